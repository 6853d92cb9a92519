//! Layered configuration shared by every service: typed defaults, then an optional TOML file, then
//! `TASKMESH_`-prefixed environment variables with `__` between levels (`TASKMESH_VAULT__ADDR`).
//!
//! Everything is parsed and validated before any port is bound. A bad value is reported with the key
//! that holds it, and binaries exit with [`EXIT_CONFIG`] (EX_CONFIG from sysexits.h).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Exit code of a binary whose configuration is invalid.
pub const EXIT_CONFIG: i32 = 64;

/// A configuration value that failed to parse or validate, with the key that holds it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The layers did not deserialize into the typed configuration.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A value parsed but broke a rule.
    #[error("invalid configuration: key `{key}`: {message}")]
    Invalid {
        /// Dotted key, as in the TOML file (`vault.addr`).
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

impl From<figment::Error> for ConfigError {
    fn from(err: figment::Error) -> Self {
        // One entry per broken value, each with its dotted key (lower case, as in the TOML file)
        // and the layer it came from.
        let text = err
            .into_iter()
            .map(|e| {
                let key = e.path.join(".").to_lowercase();
                let source = e
                    .metadata
                    .as_ref()
                    .map(|m| format!(" (from {})", m.name))
                    .unwrap_or_default();
                if key.is_empty() {
                    format!("{}{source}", e.kind)
                } else {
                    format!("key `{key}`: {}{source}", e.kind)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        Self::Parse(text)
    }
}

/// The layers of a service's configuration, before extraction.
///
/// Tests build one with [`ConfigLayers::defaults`] and `merge` overrides (never `set_var`).
#[derive(Debug, Clone)]
pub struct ConfigLayers {
    figment: Figment,
}

impl ConfigLayers {
    /// Typed defaults for `service` listening for gRPC on `grpc_port` (admin on `grpc_port + 1000`).
    pub fn defaults(service: &str, grpc_port: u16) -> Self {
        let mesh = MeshConfig::defaults(service, grpc_port);
        Self {
            figment: Figment::from(Serialized::defaults(mesh)),
        }
    }

    /// Defaults, then `file` if given, then the process environment.
    pub fn load(service: &str, grpc_port: u16, file: Option<&Path>) -> Self {
        let mut layers = Self::defaults(service, grpc_port);
        if let Some(file) = file {
            layers.figment = layers.figment.merge(Toml::file_exact(file));
        }
        layers.figment = layers.figment.merge(Env::prefixed("TASKMESH_").split("__"));
        layers
    }

    /// Adds service-specific defaults under `key` (for example the `limits` table).
    pub fn with_defaults<T: Serialize>(mut self, key: &str, value: &T) -> Self {
        // Defaults must lose against everything already merged, so join rather than merge.
        self.figment = self.figment.join(Serialized::default(key, value));
        self
    }

    /// Adds service-specific defaults at the top level: each field of `value` is a table beside the
    /// runtime's (`limits`, `workers`). Joined, so everything already merged wins.
    pub fn with_root_defaults<T: Serialize>(mut self, value: &T) -> Self {
        self.figment = self.figment.join(Serialized::defaults(value));
        self
    }

    /// Overrides one dotted key, as a later layer would.
    pub fn set<T: Serialize>(mut self, key: &str, value: T) -> Self {
        self.figment = self.figment.merge((key, value));
        self
    }

    /// Extracts and validates the runtime's part of the configuration.
    pub fn mesh(&self) -> Result<MeshConfig, ConfigError> {
        let mesh: MeshConfig = self.figment.extract()?;
        mesh.validate()?;
        Ok(mesh)
    }

    /// Extracts the service-specific tables as one value (the counterpart of
    /// [`with_root_defaults`](Self::with_root_defaults)).
    pub fn extract<T: for<'de> Deserialize<'de>>(&self) -> Result<T, ConfigError> {
        Ok(self.figment.extract()?)
    }

    /// Extracts a service-specific table.
    pub fn section<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<T, ConfigError> {
        Ok(self.figment.extract_inner(key)?)
    }
}

/// Configuration every service shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MeshConfig {
    /// Service name: names its Vault secrets, its NATS source and its logs.
    pub service: String,
    /// Native gRPC listener.
    pub grpc: ListenConfig,
    /// Admin HTTP listener (`/healthz`, `/readyz`, `/metrics`).
    pub admin: ListenConfig,
    /// How to reach and log in to Vault.
    pub vault: VaultConfig,
    /// Where the service's database is; credentials come from Vault.
    pub database: DatabaseConfig,
    /// NATS JetStream.
    pub nats: NatsConfig,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Who verifies callers: identity's JWKS and API keys.
    pub auth: AuthConfig,
}

/// A TCP listener address; port 0 asks the OS for a free port (tests).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListenConfig {
    /// Address and port.
    pub listen: SocketAddr,
}

/// How a service logs in to Vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultAuth {
    /// A token, read from `token_file` or `token` (dev and tests).
    Token,
    /// AppRole: `role_id` and a secret id read from `secret_id_file` or `secret_id`.
    Approle,
    /// The JWT auth method: a token read from `jwt_file` (anew at every login), presented for
    /// `role` at `jwt_mount`.
    Jwt,
    /// The Kubernetes auth method: the pod's projected service-account token (`jwt_file`,
    /// by default the kubelet's path), presented for `role` at `kubernetes_mount`.
    Kubernetes,
}

/// Where Kubernetes projects a pod's service-account token.
pub const KUBERNETES_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Vault address, login method and where the service's secrets are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VaultConfig {
    /// Base URL, `http://127.0.0.1:58200`.
    pub addr: String,
    /// Login method.
    pub auth: VaultAuth,
    /// File holding the token (auth = token).
    pub token_file: Option<PathBuf>,
    /// The token itself (auth = token); prefer `token_file`.
    #[serde(skip_serializing)]
    pub token: Option<SecretString>,
    /// AppRole mount path.
    pub approle_mount: String,
    /// AppRole role id (auth = approle); not a secret on its own.
    pub role_id: Option<String>,
    /// File holding the AppRole role id.
    pub role_id_file: Option<PathBuf>,
    /// File holding the AppRole secret id (auth = approle).
    pub secret_id_file: Option<PathBuf>,
    /// The AppRole secret id itself; prefer `secret_id_file`.
    #[serde(skip_serializing)]
    pub secret_id: Option<SecretString>,
    /// The Vault role to log in as (auth = jwt or kubernetes); the service's name by default.
    pub role: Option<String>,
    /// File holding the JWT (auth = jwt; auth = kubernetes reads [`KUBERNETES_TOKEN_FILE`] unless
    /// this is set). Read again at every login, since such tokens are rotated.
    pub jwt_file: Option<PathBuf>,
    /// Mount of the JWT auth method.
    pub jwt_mount: String,
    /// Mount of the Kubernetes auth method.
    pub kubernetes_mount: String,
    /// Mount of the KV version 2 engine.
    pub kv_mount: String,
    /// Path of the service's secrets inside the KV mount; the database secret is `<path>/database`.
    pub secret_path: String,
    /// Timeout of each Vault request, in milliseconds.
    pub timeout_ms: u64,
}

impl VaultConfig {
    /// The role a service logs in as by default: the last part of its secret path
    /// (`taskmesh/projects` → `projects`), one Vault role per service.
    pub fn service_role(&self) -> String {
        self.secret_path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Database location and pool size. The user name and password are read from Vault.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseConfig {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database name; the Vault secret may override it.
    pub name: String,
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// How long to wait for a connection, in milliseconds.
    pub acquire_timeout_ms: u64,
}

/// NATS connection and JetStream settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NatsConfig {
    /// Server URL, `nats://127.0.0.1:54222`.
    pub url: String,
    /// Replicas of the streams the service creates (1 locally, 3 in a cluster).
    pub stream_replicas: usize,
    /// How long JetStream remembers a `Nats-Msg-Id` to drop duplicates, in seconds.
    pub duplicate_window_secs: u64,
}

/// Log format and OTLP export.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TelemetryConfig {
    /// `json` (default) or `text`.
    pub log_format: LogFormat,
    /// `tracing` env-filter directive, `info` by default.
    pub log_level: String,
    /// OTLP/gRPC endpoint (`http://127.0.0.1:54317`); traces are exported only when set.
    pub otlp_endpoint: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human readable text.
    Text,
}

/// Graceful shutdown settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShutdownConfig {
    /// How long in-flight calls may take to finish after the signal, in milliseconds.
    pub grace_period_ms: u64,
}

/// Where identity is and how long verification material is cached (`auth` config table).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthConfig {
    /// gRPC endpoint of the identity service.
    pub identity_endpoint: String,
    /// The `iss` every access token must carry.
    pub issuer: String,
    /// How long the JWKS is trusted before it is fetched again, in milliseconds.
    pub jwks_cache_ms: u64,
    /// How long a resolved API key is trusted, in milliseconds.
    pub api_key_cache_ms: u64,
    /// How long an API key identity did not know is refused without asking again, in
    /// milliseconds, so that repeating a wrong key does not reach the database each time.
    pub unknown_api_key_cache_ms: u64,
    /// Longest wait for identity, in milliseconds.
    pub timeout_ms: u64,
    /// Users (`users/{user}`) who may call operational RPCs such as RebuildReadModel. Empty by
    /// default: nobody may.
    pub operators: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            identity_endpoint: "http://127.0.0.1:50051".to_owned(),
            issuer: "taskmesh".to_owned(),
            jwks_cache_ms: 60_000,
            api_key_cache_ms: 10_000,
            unknown_api_key_cache_ms: 5_000,
            timeout_ms: 2_000,
            operators: Vec::new(),
        }
    }
}

impl AuthConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_url(
            "auth.identity_endpoint",
            &self.identity_endpoint,
            &["http", "https"],
        )?;
        if self.issuer.is_empty() {
            return Err(ConfigError::invalid("auth.issuer", "must not be empty"));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::invalid("auth.timeout_ms", "must be positive"));
        }
        Ok(())
    }
}

impl MeshConfig {
    /// The defaults of a service listening for gRPC on `grpc_port`, with the local stack's ports.
    pub fn defaults(service: &str, grpc_port: u16) -> Self {
        let admin_port = grpc_port.saturating_add(1000);
        Self {
            auth: AuthConfig::default(),
            service: service.to_owned(),
            grpc: ListenConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], grpc_port)),
            },
            admin: ListenConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            },
            vault: VaultConfig {
                addr: "http://127.0.0.1:58200".to_owned(),
                auth: VaultAuth::Approle,
                token_file: None,
                token: None,
                approle_mount: "approle".to_owned(),
                role_id: None,
                role_id_file: None,
                secret_id_file: None,
                secret_id: None,
                role: None,
                jwt_file: None,
                jwt_mount: "jwt".to_owned(),
                kubernetes_mount: "kubernetes".to_owned(),
                kv_mount: "secret".to_owned(),
                secret_path: format!("taskmesh/{service}"),
                timeout_ms: 5_000,
            },
            database: DatabaseConfig {
                host: "127.0.0.1".to_owned(),
                port: 55432,
                name: service.to_owned(),
                max_connections: 10,
                acquire_timeout_ms: 5_000,
            },
            nats: NatsConfig {
                url: "nats://127.0.0.1:54222".to_owned(),
                stream_replicas: 1,
                duplicate_window_secs: 120,
            },
            telemetry: TelemetryConfig {
                log_format: LogFormat::Json,
                log_level: "info".to_owned(),
                otlp_endpoint: None,
            },
            shutdown: ShutdownConfig {
                grace_period_ms: 10_000,
            },
        }
    }

    /// Checks the rules serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.service.is_empty() {
            return Err(ConfigError::invalid("service", "must not be empty"));
        }
        check_url("vault.addr", &self.vault.addr, &["http", "https"])?;
        match self.vault.auth {
            VaultAuth::Token => {
                if self.vault.token.is_none() && self.vault.token_file.is_none() {
                    return Err(ConfigError::invalid(
                        "vault.token_file",
                        "auth = token needs vault.token_file or vault.token",
                    ));
                }
            }
            VaultAuth::Approle => {
                if self.vault.role_id.is_none() && self.vault.role_id_file.is_none() {
                    return Err(ConfigError::invalid(
                        "vault.role_id",
                        "auth = approle needs vault.role_id or vault.role_id_file",
                    ));
                }
                if self.vault.secret_id.is_none() && self.vault.secret_id_file.is_none() {
                    return Err(ConfigError::invalid(
                        "vault.secret_id_file",
                        "auth = approle needs vault.secret_id_file or vault.secret_id",
                    ));
                }
            }
            VaultAuth::Jwt => {
                if self.vault.jwt_file.is_none() {
                    return Err(ConfigError::invalid(
                        "vault.jwt_file",
                        "auth = jwt needs vault.jwt_file",
                    ));
                }
            }
            VaultAuth::Kubernetes => {}
        }
        self.auth.validate()?;
        if self.vault.kv_mount.is_empty() {
            return Err(ConfigError::invalid("vault.kv_mount", "must not be empty"));
        }
        if self.vault.timeout_ms == 0 {
            return Err(ConfigError::invalid("vault.timeout_ms", "must be positive"));
        }
        if self.database.host.is_empty() {
            return Err(ConfigError::invalid("database.host", "must not be empty"));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        check_url("nats.url", &self.nats.url, &["nats", "tls", "ws", "wss"])?;
        if !(1..=5).contains(&self.nats.stream_replicas) {
            return Err(ConfigError::invalid(
                "nats.stream_replicas",
                "must be between 1 and 5",
            ));
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint {
            check_url("telemetry.otlp_endpoint", endpoint, &["http", "https"])?;
        }
        if self.grpc.listen.port() != 0 && self.grpc.listen.port() == self.admin.listen.port() {
            return Err(ConfigError::invalid(
                "admin.listen",
                "must differ from grpc.listen",
            ));
        }
        Ok(())
    }

    /// The grace period as a duration.
    pub fn grace_period(&self) -> Duration {
        Duration::from_millis(self.shutdown.grace_period_ms)
    }
}

pub(crate) fn check_url(key: &str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let url = url::Url::parse(value)
        .map_err(|e| ConfigError::invalid(key, format!("`{value}` is not a URL: {e}")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(ConfigError::invalid(
            key,
            format!(
                "scheme `{}` is not one of {}",
                url.scheme(),
                schemes.join(", ")
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::invalid(key, format!("`{value}` has no host")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_token(layers: ConfigLayers) -> ConfigLayers {
        layers
            .set("vault.auth", "token")
            .set("vault.token_file", "/dev/null")
    }

    #[test]
    fn defaults_use_the_local_stack_ports() {
        let mesh = with_token(ConfigLayers::defaults("projects", 50052))
            .mesh()
            .expect("valid");
        assert_eq!(mesh.grpc.listen.port(), 50052);
        assert_eq!(mesh.admin.listen.port(), 51052);
        assert_eq!(mesh.database.port, 55432);
        assert_eq!(mesh.vault.secret_path, "taskmesh/projects");
    }

    #[test]
    fn later_layers_override_earlier_ones() {
        let mesh = with_token(ConfigLayers::defaults("projects", 50052))
            .set("database.port", 6000)
            .mesh()
            .expect("valid");
        assert_eq!(mesh.database.port, 6000);
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_key() {
        let err = with_token(ConfigLayers::defaults("projects", 50052))
            .set("database.port", "not-a-port")
            .mesh()
            .expect_err("invalid");
        assert!(err.to_string().contains("database.port"), "{err}");
    }

    #[test]
    fn a_broken_rule_names_its_key() {
        let err = with_token(ConfigLayers::defaults("projects", 50052))
            .set("vault.addr", "ftp://vault")
            .mesh()
            .expect_err("invalid");
        assert!(err.to_string().contains("vault.addr"), "{err}");
    }

    #[test]
    fn approle_without_a_secret_id_is_rejected() {
        let err = ConfigLayers::defaults("projects", 50052)
            .set("vault.role_id", "abc")
            .mesh()
            .expect_err("invalid");
        assert!(err.to_string().contains("vault.secret_id_file"), "{err}");
    }

    #[test]
    fn service_sections_get_their_defaults_and_overrides() {
        #[derive(Serialize, Deserialize)]
        struct Limits {
            max: u32,
        }
        let layers = ConfigLayers::defaults("projects", 50052)
            .set("limits.max", 9)
            .with_defaults("limits", &Limits { max: 6 });
        let limits: Limits = layers.section("limits").expect("valid");
        assert_eq!(limits.max, 9);
    }
}
