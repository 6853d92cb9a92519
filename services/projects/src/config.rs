//! The projects service's configuration: the runtime's shared settings plus its `limits` table.

use std::path::Path;

use taskmesh_mesh::config::ConfigError;
use taskmesh_mesh::{ConfigLayers, MeshConfig};

use crate::domain::rules::Limits;

/// Service name: Vault path `secret/taskmesh/projects`, database `projects`, stream `PROJECTS`.
pub const SERVICE: &str = "projects";
/// Default gRPC port (ARCHITECTURE.md §7); admin HTTP is 51052.
pub const GRPC_PORT: u16 = 50052;

/// Everything the service reads at startup.
#[derive(Debug, Clone)]
pub struct Config {
    /// Runtime settings (listeners, Vault, database, NATS, telemetry, shutdown).
    pub mesh: MeshConfig,
    /// Count limits.
    pub limits: Limits,
}

impl Config {
    /// Defaults, then `file`, then `TASKMESH_*` environment variables.
    pub fn layers(file: Option<&Path>) -> ConfigLayers {
        ConfigLayers::load(SERVICE, GRPC_PORT, file).with_defaults("limits", &Limits::default())
    }

    /// Defaults only; tests add their overrides with `set`.
    pub fn default_layers() -> ConfigLayers {
        ConfigLayers::defaults(SERVICE, GRPC_PORT).with_defaults("limits", &Limits::default())
    }

    /// Extracts and validates the configuration.
    pub fn from_layers(layers: &ConfigLayers) -> Result<Self, ConfigError> {
        let mesh = layers.mesh()?;
        let limits: Limits = layers.section("limits")?;
        limits.validate()?;
        Ok(Self { mesh, limits })
    }
}
