//! The notes service's own settings (the runtime's come from the kit).

use serde::{Deserialize, Serialize};
use taskmesh_clients::projects::ProjectsEndpoint;
use taskmesh_clients::tasks::TasksEndpoint;
use taskmesh_mesh::config::ConfigError;

/// The service's configuration: the runtime's settings plus [`Settings`].
pub type Config = taskmesh_service::Config<crate::Notes>;

/// What the notes service is told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// How long a deleted note can be undeleted before it is purged, in days.
    pub keep_deleted_days: i64,
    /// The projects service: may the caller read a project a note links to.
    pub projects: ProjectsEndpoint,
    /// The tasks service: may the caller read a task a note links to.
    pub tasks: TasksEndpoint,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            keep_deleted_days: 30,
            projects: ProjectsEndpoint::default(),
            tasks: TasksEndpoint::default(),
        }
    }
}

impl taskmesh_service::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=3650).contains(&self.keep_deleted_days) {
            return Err(ConfigError::Invalid {
                key: "keep_deleted_days".to_owned(),
                message: "must be between 1 and 3650".to_owned(),
            });
        }
        self.projects.validate()
    }
}
