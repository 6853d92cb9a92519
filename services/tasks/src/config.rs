//! The tasks service's own settings: `limits` and where the `projects` service is (the runtime's
//! settings come from the kit).

use serde::{Deserialize, Serialize};
use taskmesh_mesh::config::ConfigError;

use crate::domain::rules::Limits;
pub use taskmesh_clients::projects::ProjectsEndpoint;

/// The service's configuration: the runtime's settings plus [`Settings`].
pub type Config = taskmesh_service::Config<crate::Tasks>;

/// The tables only the tasks service reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Settings {
    /// Quotas.
    pub limits: Limits,
    /// The projects service.
    pub projects: ProjectsEndpoint,
}

impl taskmesh_service::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.limits.max_tasks_per_board < 1 {
            return Err(ConfigError::Invalid {
                key: "limits.max_tasks_per_board".to_owned(),
                message: "must be at least 1".to_owned(),
            });
        }
        self.projects.validate()
    }
}
