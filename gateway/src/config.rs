//! The gateway's configuration: listeners, upstreams per proto package, CORS, limits, telemetry.
//! Layers as for services: typed defaults, then a TOML file, then `TASKMESH_*` variables.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use taskmesh_mesh::config::{ConfigError, LogFormat, TelemetryConfig};

use crate::upstream::UpstreamConfig;

/// Everything the gateway reads at startup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayConfig {
    /// REST/JSON, grpc-web and `/openapi.json`.
    pub http_listen: SocketAddr,
    /// Native gRPC (proxy, reflection, health).
    pub grpc_listen: SocketAddr,
    /// `/healthz`, `/readyz`, `/metrics`.
    pub admin_listen: SocketAddr,
    /// Which endpoint serves which proto package.
    pub upstreams: Vec<UpstreamConfig>,
    /// Origins allowed to call from a browser (`*` for any).
    pub cors_allowed_origins: Vec<String>,
    /// Largest request body, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Largest streamed upload (an RPC taking a stream with an `HttpBody` body), in bytes;
    /// larger ones get 413. The service behind sets its own limit too.
    pub max_upload_bytes: u64,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
    /// How long in-flight requests may take after SIGTERM, in milliseconds.
    pub grace_period_ms: u64,
    /// The `swagger-ui-dist` package directory; `/docs` serves Swagger UI from it when set.
    pub swagger_ui_dir: Option<std::path::PathBuf>,
    /// Timeouts of single RPCs by full name (`taskmesh.tasks.v1.TaskService.ListTasks`), in
    /// milliseconds; they replace the upstream's timeout for that RPC.
    pub route_timeouts_ms: std::collections::BTreeMap<String, u64>,
    /// Where identity is; the gateway verifies credentials against it like every service.
    pub auth: taskmesh_mesh::auth::AuthConfig,
    /// Whether the gateway itself refuses calls with missing or bad credentials (the services
    /// always do). Only test setups without an identity service turn it off.
    pub verify_credentials: bool,
    /// Sign-in and per-user rate limits.
    pub rate_limits: crate::guard::RateLimits,
    /// The URL clients reach the gateway at (scheme, host, port; no trailing `/`): the OpenID
    /// discovery document names its endpoints under it, never under the request's `Host`.
    pub public_url: String,
}

/// The default upstreams: every service on its local-stack port (ARCHITECTURE.md §7).
fn default_upstreams() -> Vec<UpstreamConfig> {
    [
        ("identity", 50051),
        ("projects", 50052),
        ("tasks", 50053),
        ("execution", 50054),
        ("scheduler", 50055),
        ("notifications", 50056),
        ("notes", 50057),
        ("bookings", 50058),
        ("marketplace", 50059),
    ]
    .into_iter()
    .map(|(context, port)| UpstreamConfig {
        prefix: format!("taskmesh.{context}"),
        endpoint: format!("http://127.0.0.1:{port}"),
        timeout_ms: 30_000,
    })
    .collect()
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 10090)),
            upstreams: default_upstreams(),
            cors_allowed_origins: vec![
                "http://127.0.0.1:8080".to_owned(),
                "http://localhost:8080".to_owned(),
            ],
            max_body_bytes: 4 * 1024 * 1024,
            max_upload_bytes: 64 * 1024 * 1024,
            telemetry: TelemetryConfig {
                log_format: LogFormat::Json,
                log_level: "info".to_owned(),
                otlp_endpoint: None,
            },
            grace_period_ms: 10_000,
            swagger_ui_dir: None,
            route_timeouts_ms: std::collections::BTreeMap::new(),
            auth: taskmesh_mesh::auth::AuthConfig::default(),
            verify_credentials: true,
            rate_limits: crate::guard::RateLimits::default(),
            public_url: "http://127.0.0.1:8080".to_owned(),
        }
    }
}

impl GatewayConfig {
    /// Defaults, then `file`, then the environment.
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment.merge(Env::prefixed("TASKMESH_").split("__"))
    }

    /// Extracts and validates.
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let config: Self = figment.extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.to_owned(),
            message,
        };
        for upstream in &self.upstreams {
            if !upstream.endpoint.starts_with("http://")
                && !upstream.endpoint.starts_with("https://")
            {
                return Err(invalid(
                    "upstreams",
                    format!("`{}` is not an http(s) URL", upstream.endpoint),
                ));
            }
            if upstream.prefix.is_empty() || upstream.timeout_ms == 0 {
                return Err(invalid(
                    "upstreams",
                    "each needs a prefix and a positive timeout_ms".to_owned(),
                ));
            }
        }
        if let Some((rpc, _)) = self.route_timeouts_ms.iter().find(|(_, ms)| **ms == 0) {
            return Err(invalid(
                "route_timeouts_ms",
                format!("`{rpc}` needs a positive timeout"),
            ));
        }
        if self.max_upload_bytes == 0 {
            return Err(invalid("max_upload_bytes", "must be positive".to_owned()));
        }
        if self.max_body_bytes == 0 {
            return Err(invalid("max_body_bytes", "must be positive".to_owned()));
        }
        self.auth.validate()?;
        self.rate_limits.validate()?;
        Ok(())
    }

    /// The grace period.
    pub fn grace_period(&self) -> Duration {
        Duration::from_millis(self.grace_period_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_route_every_context_to_its_port() {
        let config = GatewayConfig::from_figment(&Figment::from(Serialized::defaults(
            GatewayConfig::default(),
        )))
        .expect("valid");
        assert_eq!(config.http_listen.port(), 8080);
        assert_eq!(config.grpc_listen.port(), 9090);
        let tasks = config
            .upstreams
            .iter()
            .find(|u| u.prefix == "taskmesh.tasks")
            .expect("tasks");
        assert_eq!(tasks.endpoint, "http://127.0.0.1:50053");
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let figment = Figment::from(Serialized::defaults(GatewayConfig::default()))
            .merge(("max_body_bytes", "lots"));
        let err = GatewayConfig::from_figment(&figment).expect_err("invalid");
        assert!(err.to_string().contains("max_body_bytes"), "{err}");
    }
}
