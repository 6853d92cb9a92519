//! The identity service's configuration: the runtime's shared settings plus its `identity` table.

use std::path::Path;

use serde::{Deserialize, Serialize};
use taskmesh_mesh::config::ConfigError;
use taskmesh_mesh::{ConfigLayers, MeshConfig};

/// Service name: Vault path `secret/taskmesh/identity`, database `identity`, stream `IDENTITY`.
pub const SERVICE: &str = "identity";
/// Default gRPC port (ARCHITECTURE.md §7); admin HTTP is 51051.
pub const GRPC_PORT: u16 = 50051;

/// Token lifetimes and key reloading.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdentitySettings {
    /// Access token lifetime in seconds (about 15 minutes).
    pub access_token_ttl_secs: i64,
    /// Refresh token lifetime in seconds.
    pub refresh_token_ttl_secs: i64,
    /// How often the signing keys are read again from Vault, in milliseconds.
    pub key_reload_ms: u64,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            key_reload_ms: 30_000,
        }
    }
}

/// Everything the service reads at startup.
#[derive(Debug, Clone)]
pub struct Config {
    /// Runtime settings (listeners, Vault, database, NATS, telemetry, shutdown, auth).
    pub mesh: MeshConfig,
    /// Token lifetimes and key reloading.
    pub identity: IdentitySettings,
}

impl Config {
    /// Defaults, then `file`, then `TASKMESH_*` environment variables.
    pub fn layers(file: Option<&Path>) -> ConfigLayers {
        ConfigLayers::load(SERVICE, GRPC_PORT, file)
            .with_defaults("identity", &IdentitySettings::default())
    }

    /// Defaults only; tests add their overrides with `set`.
    pub fn default_layers() -> ConfigLayers {
        ConfigLayers::defaults(SERVICE, GRPC_PORT)
            .with_defaults("identity", &IdentitySettings::default())
    }

    /// Extracts and validates the configuration.
    pub fn from_layers(layers: &ConfigLayers) -> Result<Self, ConfigError> {
        let mesh = layers.mesh()?;
        let identity: IdentitySettings = layers.section("identity")?;
        for (key, value) in [
            (
                "identity.access_token_ttl_secs",
                identity.access_token_ttl_secs,
            ),
            (
                "identity.refresh_token_ttl_secs",
                identity.refresh_token_ttl_secs,
            ),
        ] {
            if value < 1 {
                return Err(ConfigError::Invalid {
                    key: key.to_owned(),
                    message: "must be at least 1".to_owned(),
                });
            }
        }
        if identity.key_reload_ms < 10 {
            return Err(ConfigError::Invalid {
                key: "identity.key_reload_ms".to_owned(),
                message: "must be at least 10".to_owned(),
            });
        }
        Ok(Self { mesh, identity })
    }
}
