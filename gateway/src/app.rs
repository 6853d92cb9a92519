//! Building and running the gateway: the REST/grpc-web listener, the native gRPC listener and the
//! admin port, all on the mesh's shared server (health, reflection, drain) and drained together.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderName, HeaderValue, Method, Request, header};
use prost_reflect::DescriptorPool;
use tonic::service::Routes;
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::GatewayConfig;
use crate::grpc_proxy::GrpcProxy;
use crate::guard::EdgeGuard;
use crate::rest::{self, RestState};
use crate::routes::{RouteError, RouteTable};
use crate::upstream::{UpstreamError, Upstreams};
use taskmesh_mesh::config::ConfigError;
use taskmesh_mesh::server::{Listeners, ServerError};
use taskmesh_mesh::{MeshServer, Metrics, Readiness};

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A descriptor set does not decode.
    #[error("invalid descriptor set: {0}")]
    Descriptors(String),
    /// A setting is unusable (e.g. `auth.identity_endpoint`).
    #[error(transparent)]
    Config(#[from] taskmesh_mesh::config::ConfigError),
    /// A route is malformed.
    #[error(transparent)]
    Routes(#[from] RouteError),
    /// An upstream endpoint is malformed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A listener could not bind, or a server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// A bound gateway.
pub struct Gateway {
    server: MeshServer,
    grace_period: std::time::Duration,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// What the gateway's routers are made of.
struct Edge {
    rest: Arc<RestState>,
    upstreams: Arc<Upstreams>,
    guard: Arc<EdgeGuard>,
    openapi: Arc<String>,
    config: GatewayConfig,
}

impl Gateway {
    /// Reads the routes from the contracts (plus `extra_descriptor_sets`, e.g. for tests) and binds.
    pub async fn build(
        config: GatewayConfig,
        extra_descriptor_sets: &[&[u8]],
    ) -> Result<Self, GatewayError> {
        let mut pool = DescriptorPool::decode(taskmesh_contracts::FILE_DESCRIPTOR_SET)
            .map_err(|e| GatewayError::Descriptors(e.to_string()))?;
        for set in extra_descriptor_sets {
            pool.decode_file_descriptor_set(*set)
                .map_err(|e| GatewayError::Descriptors(e.to_string()))?;
        }
        // Internal RPCs get no REST route (and no place in the OpenAPI document).
        let routes = RouteTable::from_pool(&pool)?.without(taskmesh_mesh::auth::INTERNAL_METHODS);
        tracing::info!(
            routes = routes.bindings().len(),
            "REST routes read from the descriptors"
        );
        let openapi = Arc::new(crate::openapi::document(&routes, "taskmesh").to_string());
        let upstreams = Arc::new(Upstreams::new(&config.upstreams)?);
        let metrics = Metrics::new("gateway");
        let authenticator = if config.verify_credentials {
            Some(taskmesh_clients::IdentityClient::authenticator(
                &config.auth,
            )?)
        } else {
            None
        };
        let guard = Arc::new(EdgeGuard::new(
            authenticator,
            taskmesh_contracts::FILE_DESCRIPTOR_SET,
            &config.rate_limits,
        ));
        let rest = Arc::new(RestState {
            guard: Arc::clone(&guard),
            routes,
            pool,
            upstreams: Upstreams::clone(&upstreams),
            max_body_bytes: config.max_body_bytes,
            max_upload_bytes: config.max_upload_bytes,
            metrics: metrics.clone(),
            route_timeouts: config
                .route_timeouts_ms
                .iter()
                .map(|(rpc, ms)| (rpc.clone(), std::time::Duration::from_millis(*ms)))
                .collect(),
        });
        let edge = Edge {
            rest,
            upstreams,
            guard,
            openapi,
            config,
        };
        let mut descriptor_sets = vec![taskmesh_contracts::FILE_DESCRIPTOR_SET];
        descriptor_sets.extend_from_slice(extra_descriptor_sets);
        let listeners = Listeners {
            grpc: edge.config.grpc_listen,
            admin: edge.config.admin_listen,
            grace_period: edge.config.grace_period(),
        };
        // Native gRPC: health and reflection from the kit's server, everything else proxied.
        let proxy = Routes::from(Router::new().fallback_service(GrpcProxy::new(
            Arc::clone(&edge.upstreams),
            Arc::clone(&edge.guard),
        )));
        let server = MeshServer::bind_unguarded(
            listeners,
            proxy,
            &[],
            &descriptor_sets,
            Readiness::default(),
            metrics,
        )
        .await?
        .with_http(edge.config.http_listen, edge.http_router())
        .await?;
        Ok(Self {
            server,
            grace_period: edge.config.grace_period(),
        })
    }

    /// The REST / grpc-web address.
    pub fn http_addr(&self) -> SocketAddr {
        self.server
            .http_addr()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The native gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.grpc_addr()
    }

    /// The admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.server.admin_addr()
    }

    /// Serves until `shutdown` completes, then drains within the grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), GatewayError> {
        tracing::info!(
            http = %self.http_addr(),
            grace_ms = self.grace_period.as_millis() as u64,
            "gateway serving"
        );
        self.server.run(shutdown).await?;
        tracing::info!("gateway stopped");
        Ok(())
    }
}

impl Edge {
    fn http_router(&self) -> Router {
        let openapi = Arc::clone(&self.openapi);
        let rest = Arc::clone(&self.rest);
        let grpc_web = tonic_web::GrpcWebLayer::new().layer(GrpcProxy::new(
            Arc::clone(&self.upstreams),
            Arc::clone(&self.guard),
        ));
        let edge = tower::service_fn(move |request: Request<Body>| {
            let rest = Arc::clone(&rest);
            let grpc_web = grpc_web.clone();
            async move {
                let is_grpc_web = request
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|ct| ct.starts_with("application/grpc-web"));
                if is_grpc_web {
                    let response = grpc_web.oneshot(request).await?;
                    Ok::<_, std::convert::Infallible>(response.map(Body::new))
                } else {
                    Ok(rest::handle(rest, request).await)
                }
            }
        });
        let docs_dir = self.config.swagger_ui_dir.clone().map(Arc::new);
        let asset_dir = docs_dir.clone();
        Router::new()
            .route(
                "/docs",
                get(move || {
                    let dir = docs_dir.clone();
                    async move { crate::docs::serve(dir.as_deref().map(|d| d.as_path()), None).await }
                }),
            )
            .route(
                "/docs/{asset}",
                get(move |axum::extract::Path(asset): axum::extract::Path<String>| {
                    let dir = asset_dir.clone();
                    async move { crate::docs::serve(dir.as_deref().map(|d| d.as_path()), Some(&asset)).await }
                }),
            )
            .route(
                "/.well-known/jwks.json",
                get({
                    let upstreams = Arc::clone(&self.upstreams);
                    move || crate::wellknown::jwks(Arc::clone(&upstreams))
                }),
            )
            .route(
                "/.well-known/openid-configuration",
                get({
                    let issuer = self.config.auth.issuer.clone();
                    let public_url = self.config.public_url.trim_end_matches('/').to_owned();
                    move || {
                        let (issuer, public_url) = (issuer.clone(), public_url.clone());
                        async move { crate::wellknown::discovery(&issuer, &public_url) }
                    }
                }),
            )
            .route(
                "/openapi.json",
                get(move || {
                    let openapi = Arc::clone(&openapi);
                    async move {
                        (
                            [(header::CONTENT_TYPE, "application/json")],
                            openapi.to_string(),
                        )
                    }
                }),
            )
            .fallback_service(edge)
            .layer(self.cors())
    }

    fn cors(&self) -> CorsLayer {
        let origins = &self.config.cors_allowed_origins;
        let allow = if origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
        };
        let names = |list: &[&'static str]| {
            list.iter()
                .map(|h| HeaderName::from_static(h))
                .collect::<Vec<_>>()
        };
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers(names(&[
                "content-type",
                "authorization",
                "x-grpc-web",
                "x-user-agent",
                "grpc-timeout",
                "x-request-id",
                "x-correlation-id",
                "traceparent",
                "x-api-key",
            ]))
            .expose_headers(names(&[
                "grpc-status",
                "grpc-message",
                "grpc-status-details-bin",
                "x-request-id",
            ]))
    }
}

/// The gateway as a process of the mesh: the kit's command line, configuration exit codes,
/// runtime, telemetry and shutdown signal.
impl taskmesh_service::Process for Gateway {
    const NAME: &'static str = "gateway";
    type Config = GatewayConfig;

    fn load(file: Option<&std::path::Path>) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::from_figment(&GatewayConfig::figment(file))
    }

    fn telemetry(config: &GatewayConfig) -> &taskmesh_mesh::config::TelemetryConfig {
        &config.telemetry
    }

    fn grpc_listen(config: &GatewayConfig) -> std::net::SocketAddr {
        config.grpc_listen
    }

    async fn run(
        config: GatewayConfig,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), taskmesh_service::BoxError> {
        let gateway = Gateway::build(config, &[]).await?;
        gateway.run(shutdown).await?;
        Ok(())
    }
}
