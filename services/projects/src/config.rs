//! The projects service's own settings: the `limits` table (the runtime's settings come from the
//! kit).

use serde::{Deserialize, Serialize};
use taskmesh_mesh::config::ConfigError;

use crate::domain::rules::Limits;

/// The service's configuration: the runtime's settings plus [`Settings`].
pub type Config = taskmesh_service::Config<crate::Projects>;

/// The tables only the projects service reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Settings {
    /// Count limits.
    pub limits: Limits,
}

impl taskmesh_service::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.limits.validate()
    }
}
