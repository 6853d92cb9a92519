//! The tasks service's configuration: the runtime's settings, `limits` and the `projects` client.

use std::path::Path;

use taskmesh_mesh::config::ConfigError;
use taskmesh_mesh::{ConfigLayers, MeshConfig};

use crate::domain::rules::Limits;
pub use taskmesh_mesh::projects::ProjectsEndpoint;

/// Service name: Vault path `secret/taskmesh/tasks`, database `tasks`, stream `TASKS`.
pub const SERVICE: &str = "tasks";
/// Default gRPC port (ARCHITECTURE.md §7); admin HTTP is 51053.
pub const GRPC_PORT: u16 = 50053;

/// Everything the service reads at startup.
#[derive(Debug, Clone)]
pub struct Config {
    /// Runtime settings.
    pub mesh: MeshConfig,
    /// Quotas.
    pub limits: Limits,
    /// The projects service.
    pub projects: ProjectsEndpoint,
}

impl Config {
    /// Defaults, then `file`, then `TASKMESH_*` environment variables.
    pub fn layers(file: Option<&Path>) -> ConfigLayers {
        Self::with_sections(ConfigLayers::load(SERVICE, GRPC_PORT, file))
    }

    /// Defaults only; tests add overrides with `set`.
    pub fn default_layers() -> ConfigLayers {
        Self::with_sections(ConfigLayers::defaults(SERVICE, GRPC_PORT))
    }

    fn with_sections(layers: ConfigLayers) -> ConfigLayers {
        layers
            .with_defaults("limits", &Limits::default())
            .with_defaults("projects", &ProjectsEndpoint::default())
    }

    /// Extracts and validates the configuration.
    pub fn from_layers(layers: &ConfigLayers) -> Result<Self, ConfigError> {
        let mesh = layers.mesh()?;
        let limits: Limits = layers.section("limits")?;
        if limits.max_tasks_per_board < 1 {
            return Err(ConfigError::Invalid {
                key: "limits.max_tasks_per_board".to_owned(),
                message: "must be at least 1".to_owned(),
            });
        }
        let projects: ProjectsEndpoint = layers.section("projects")?;
        projects.validate()?;
        Ok(Self {
            mesh,
            limits,
            projects,
        })
    }
}
