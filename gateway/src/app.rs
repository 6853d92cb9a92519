//! Building and running the gateway: the REST/grpc-web listener, the native gRPC listener and the
//! admin port, all drained on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use axum::serve::ListenerExt;
use http::{HeaderName, HeaderValue, Method, Request, header};
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::GatewayConfig;
use crate::grpc_proxy::GrpcProxy;
use crate::guard::EdgeGuard;
use crate::rest::{self, RestState};
use crate::routes::{RouteError, RouteTable};
use crate::upstream::{UpstreamError, Upstreams};
use taskmesh_mesh::{Metrics, Readiness};

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
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reflection could not be built.
    #[error("reflection: {0}")]
    Reflection(String),
    /// A server failed.
    #[error("server failed: {0}")]
    Serve(String),
}

/// A bound gateway.
pub struct Gateway {
    http: TcpListener,
    grpc: TcpListener,
    admin: TcpListener,
    rest: Arc<RestState>,
    upstreams: Arc<Upstreams>,
    guard: Arc<EdgeGuard>,
    openapi: Arc<String>,
    config: GatewayConfig,
    descriptor_sets: Vec<Vec<u8>>,
    readiness: Readiness,
    metrics: Metrics,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("http", &self.http.local_addr().ok())
            .field("grpc", &self.grpc.local_addr().ok())
            .finish_non_exhaustive()
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind { addr, source })
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
        let routes = RouteTable::from_pool(&pool)?;
        tracing::info!(
            routes = routes.bindings().len(),
            "REST routes read from the descriptors"
        );
        let openapi = Arc::new(crate::openapi::document(&routes, "taskmesh").to_string());
        let upstreams = Arc::new(Upstreams::new(&config.upstreams)?);
        let metrics = Metrics::new("gateway");
        let authenticator = if config.verify_credentials {
            Some(taskmesh_mesh::auth::Authenticator::new(&config.auth)?)
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
            metrics: metrics.clone(),
            route_timeouts: config
                .route_timeouts_ms
                .iter()
                .map(|(rpc, ms)| (rpc.clone(), std::time::Duration::from_millis(*ms)))
                .collect(),
        });
        let mut descriptor_sets = vec![taskmesh_contracts::FILE_DESCRIPTOR_SET.to_vec()];
        descriptor_sets.extend(extra_descriptor_sets.iter().map(|s| s.to_vec()));
        Ok(Self {
            http: bind(config.http_listen).await?,
            grpc: bind(config.grpc_listen).await?,
            admin: bind(config.admin_listen).await?,
            rest,
            upstreams,
            guard,
            openapi,
            descriptor_sets,
            readiness: Readiness::default(),
            metrics,
            config,
        })
    }

    /// The REST / grpc-web address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().unwrap_or(self.config.http_listen)
    }

    /// The native gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr().unwrap_or(self.config.grpc_listen)
    }

    /// The admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().unwrap_or(self.config.admin_listen)
    }

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
                    move |headers: http::HeaderMap| {
                        let issuer = issuer.clone();
                        async move { crate::wellknown::discovery(&issuer, &headers) }
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

    async fn grpc_routes(&self) -> Result<(Routes, HealthReporter), GatewayError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_service_status("", ServingStatus::Serving).await;
        let reflection = || {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(
                    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
                );
            for set in &self.descriptor_sets {
                builder = builder.register_encoded_file_descriptor_set(set);
            }
            builder
        };
        let v1 = reflection()
            .build_v1()
            .map_err(|e| GatewayError::Reflection(e.to_string()))?;
        let v1alpha = reflection()
            .build_v1alpha()
            .map_err(|e| GatewayError::Reflection(e.to_string()))?;
        let router = Routes::new(health_service)
            .add_service(v1)
            .add_service(v1alpha)
            .into_axum_router()
            .fallback_service(GrpcProxy::new(
                Arc::clone(&self.upstreams),
                Arc::clone(&self.guard),
            ));
        Ok((Routes::from(router), health))
    }

    /// Serves until `shutdown` completes, then drains within the grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), GatewayError> {
        let (routes, health) = self.grpc_routes().await?;
        let http_router = self.http_router();
        let admin_router =
            taskmesh_mesh::admin::router(self.readiness.clone(), self.metrics.clone());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let signal = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        tracing::info!(http = %self.http_addr(), grpc = %self.grpc_addr(), admin = %self.admin_addr(), "gateway serving");

        let http = tokio::spawn(
            axum::serve(
                self.http.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                }),
                http_router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(signal(stopped.clone()))
            .into_future(),
        );
        let admin = tokio::spawn(
            axum::serve(self.admin, admin_router)
                .with_graceful_shutdown(signal(stopped.clone()))
                .into_future(),
        );
        let grpc = tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(routes)
                // Without TCP_NODELAY, small responses wait for delayed ACKs (about 40 ms).
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(self.grpc).with_nodelay(Some(true)),
                    signal(stopped),
                ),
        );
        shutdown.await;
        tracing::info!("draining");
        self.readiness.set_draining();
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        let _ = stop.send(true);
        let drained = tokio::time::timeout(self.config.grace_period(), async {
            let (h, a, g) = tokio::join!(http, admin, grpc);
            (h, a, g)
        })
        .await;
        match drained {
            Ok((h, a, g)) => {
                if let Ok(Err(err)) = h {
                    return Err(GatewayError::Serve(err.to_string()));
                }
                if let Ok(Err(err)) = a {
                    return Err(GatewayError::Serve(err.to_string()));
                }
                if let Ok(Err(err)) = g {
                    return Err(GatewayError::Serve(err.to_string()));
                }
            }
            Err(_) => tracing::warn!("grace period over; abandoning unfinished requests"),
        }
        tracing::info!("gateway stopped");
        Ok(())
    }
}
