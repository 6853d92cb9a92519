//! The marketplace service's own settings (the runtime's come from the kit).

use serde::{Deserialize, Serialize};
use taskmesh_mesh::config::ConfigError;

/// The service's configuration: the runtime's settings plus [`Settings`].
pub type Config = taskmesh_service::Config<crate::Marketplace>;

/// What the marketplace service is told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// How long after writing it a review's author may change or delete it, in days.
    pub review_edit_days: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            review_edit_days: 30,
        }
    }
}

impl taskmesh_service::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(0..=3650).contains(&self.review_edit_days) {
            return Err(ConfigError::Invalid {
                key: "review_edit_days".to_owned(),
                message: "must be between 0 and 3650".to_owned(),
            });
        }
        Ok(())
    }
}
