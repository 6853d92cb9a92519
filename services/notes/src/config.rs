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
    /// Files attached to notes.
    pub attachments: AttachmentSettings,
}

/// What may be attached to a note.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AttachmentSettings {
    /// The largest file, in bytes (10 MiB).
    pub max_bytes: u64,
    /// The most files on one note.
    pub max_per_note: i64,
    /// The types (sniffed from the bytes) that may be attached.
    pub allowed_types: Vec<String>,
}

impl Default for AttachmentSettings {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            max_per_note: 100,
            allowed_types: [
                "image/png",
                "image/jpeg",
                "image/gif",
                "image/webp",
                "application/pdf",
                "text/plain",
                "application/zip",
                "application/gzip",
                "audio/mpeg",
                "video/mp4",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            keep_deleted_days: 30,
            projects: ProjectsEndpoint::default(),
            tasks: TasksEndpoint::default(),
            attachments: AttachmentSettings::default(),
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
        let invalid = |key: &str, message: &str| {
            Err(ConfigError::Invalid {
                key: format!("attachments.{key}"),
                message: message.to_owned(),
            })
        };
        if !(1..=1 << 30).contains(&self.attachments.max_bytes) {
            return invalid("max_bytes", "must be between 1 byte and 1 GiB");
        }
        if self.attachments.max_per_note < 1 {
            return invalid("max_per_note", "must be at least 1");
        }
        if self.attachments.allowed_types.is_empty() {
            return invalid("allowed_types", "must name at least one type");
        }
        self.projects.validate()?;
        self.tasks.validate()
    }
}
