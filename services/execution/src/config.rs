//! The execution service's configuration: the runtime's settings and the `workers` table.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskmesh_mesh::config::ConfigError;
use taskmesh_mesh::projects::ProjectsEndpoint;
use taskmesh_mesh::{ConfigLayers, MeshConfig};

/// Service name: Vault path `secret/taskmesh/execution`, database `execution`, stream `EXECUTION`.
pub const SERVICE: &str = "execution";
/// Default gRPC port (ARCHITECTURE.md §7); admin HTTP is 51054.
pub const GRPC_PORT: u16 = 50054;

/// How this process runs jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workers {
    /// Executions run at once by this process.
    pub concurrency: usize,
    /// How long a lease lasts without renewal, in milliseconds.
    pub lease_ms: u64,
    /// How often an idle worker looks for work, in milliseconds.
    pub poll_ms: u64,
}

impl Default for Workers {
    fn default() -> Self {
        Self {
            concurrency: 4,
            lease_ms: 10_000,
            poll_ms: 200,
        }
    }
}

/// Everything the service reads at startup.
#[derive(Debug, Clone)]
pub struct Config {
    /// Runtime settings.
    pub mesh: MeshConfig,
    /// Workers.
    pub workers: Workers,
    /// The projects service, which says who may see and change executions.
    pub projects: ProjectsEndpoint,
}

impl Config {
    /// Defaults, then `file`, then `TASKMESH_*` environment variables.
    pub fn layers(file: Option<&Path>) -> ConfigLayers {
        ConfigLayers::load(SERVICE, GRPC_PORT, file)
            .with_defaults("workers", &Workers::default())
            .with_defaults("projects", &ProjectsEndpoint::default())
    }

    /// Defaults only; tests add overrides with `set`.
    pub fn default_layers() -> ConfigLayers {
        ConfigLayers::defaults(SERVICE, GRPC_PORT)
            .with_defaults("workers", &Workers::default())
            .with_defaults("projects", &ProjectsEndpoint::default())
    }

    /// Extracts and validates the configuration.
    pub fn from_layers(layers: &ConfigLayers) -> Result<Self, ConfigError> {
        let mesh = layers.mesh()?;
        let workers: Workers = layers.section("workers")?;
        if workers.concurrency == 0 || workers.concurrency > 256 {
            return Err(ConfigError::Invalid {
                key: "workers.concurrency".to_owned(),
                message: "must be 1 to 256".to_owned(),
            });
        }
        if workers.lease_ms < 300 || workers.poll_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "workers.lease_ms".to_owned(),
                message: "lease_ms must be at least 300 and poll_ms positive".to_owned(),
            });
        }
        let projects: ProjectsEndpoint = layers.section("projects")?;
        projects.validate()?;
        Ok(Self {
            mesh,
            workers,
            projects,
        })
    }

    /// The lease as a duration.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.workers.lease_ms)
    }
}
