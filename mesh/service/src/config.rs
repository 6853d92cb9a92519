//! A service's configuration: the runtime's [`MeshConfig`] plus the service's own [`Settings`],
//! from the same layers (typed defaults, then a TOML file, then `TASKMESH_*` variables).

use std::marker::PhantomData;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use taskmesh_mesh::config::ConfigError;
use taskmesh_mesh::{ConfigLayers, MeshConfig};

use crate::Service;

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

/// Everything a service reads at startup, validated.
pub struct Config<S: Service> {
    /// The runtime's settings (listeners, Vault, database, NATS, telemetry, shutdown, auth).
    pub mesh: MeshConfig,
    /// The service's own settings.
    pub settings: S::Settings,
    service: PhantomData<fn() -> S>,
}

impl<S: Service> Clone for Config<S> {
    fn clone(&self) -> Self {
        Self {
            mesh: self.mesh.clone(),
            settings: self.settings.clone(),
            service: PhantomData,
        }
    }
}

impl<S: Service> std::fmt::Debug for Config<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("mesh", &self.mesh)
            .field("settings", &self.settings)
            .finish()
    }
}

impl<S: Service> Config<S> {
    /// Defaults, then `file` if given, then the process environment.
    pub fn layers(file: Option<&Path>) -> ConfigLayers {
        ConfigLayers::load(S::NAME, S::GRPC_PORT, file).with_root_defaults(&S::Settings::default())
    }

    /// Defaults only; tests add their overrides with `set` (never `set_var`).
    pub fn default_layers() -> ConfigLayers {
        ConfigLayers::defaults(S::NAME, S::GRPC_PORT).with_root_defaults(&S::Settings::default())
    }

    /// Extracts and validates both parts.
    pub fn from_layers(layers: &ConfigLayers) -> Result<Self, ConfigError> {
        let mesh = layers.mesh()?;
        let settings: S::Settings = layers.extract()?;
        settings.validate()?;
        Ok(Self {
            mesh,
            settings,
            service: PhantomData,
        })
    }
}
