//! A service's own settings ([`Settings`]): top-level tables of its configuration beside the
//! runtime's, read from the same layers (typed defaults, then a TOML file, then `TASKMESH_*`
//! variables) into the service's `Config`.

use serde::Serialize;
use serde::de::DeserializeOwned;
use taskmesh_mesh::config::ConfigError;

/// The service's own settings: top-level tables of the configuration beside the runtime's
/// (`limits`, `workers`, `projects`, ...). Their defaults are the lowest layer.
pub trait Settings:
    Serialize + DeserializeOwned + Default + Clone + std::fmt::Debug + Send + Sync + 'static
{
    /// Checks the rules serde cannot express; the error names the key.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Settings of a service that has none of its own.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct NoSettings {}

impl Settings for NoSettings {}
