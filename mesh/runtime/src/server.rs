//! The server every process of the mesh runs, services and gateway alike: its gRPC routes plus
//! grpc.health.v1, reflection v1 and v1alpha from the descriptor sets (behind
//! [`CallLayer`](crate::layer::CallLayer) for services, whose calls it authenticates); the admin
//! HTTP port beside it; optionally an HTTP listener (the gateway's REST and grpc-web); and graceful
//! shutdown that reports NOT_SERVING, stops accepting and drains in-flight calls within the grace
//! period.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::admin::{self, Readiness};
use crate::auth::{Authenticator, CallGuard};
use crate::config::MeshConfig;
use crate::layer::CallLayer;
use crate::metrics::Metrics;
use crate::validate::RequestRules;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not bind.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The reflection service could not read the descriptor set.
    #[error("invalid descriptor set for reflection: {0}")]
    Reflection(String),
    /// A contract rule does not compile.
    #[error("{0}")]
    Rules(String),
    /// The `auth` settings are unusable.
    #[error(transparent)]
    Auth(#[from] crate::config::ConfigError),
    /// The gRPC transport failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A bound, not yet serving, gRPC server with its admin port.
pub struct MeshServer {
    grpc_listener: TcpListener,
    admin_listener: TcpListener,
    http: Option<(TcpListener, axum::Router)>,
    routes: Routes,
    health: HealthReporter,
    service_names: Vec<String>,
    readiness: Readiness,
    metrics: Metrics,
    /// Authenticates, checks and meters each call; `None` where the routes guard calls themselves.
    guard: Option<(CallGuard, RequestRules)>,
    grace_period: Duration,
}

/// Where a [`MeshServer`] listens and how long it drains.
#[derive(Debug, Clone, Copy)]
pub struct Listeners {
    /// Native gRPC.
    pub grpc: SocketAddr,
    /// Admin HTTP (`/healthz`, `/readyz`, `/metrics`).
    pub admin: SocketAddr,
    /// How long in-flight calls get after the shutdown signal.
    pub grace_period: Duration,
}

async fn bind_listener(what: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { what, addr, source })
}

impl std::fmt::Debug for MeshServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshServer")
            .field("grpc", &self.grpc_listener.local_addr().ok())
            .field("admin", &self.admin_listener.local_addr().ok())
            .field("services", &self.service_names)
            .finish_non_exhaustive()
    }
}

impl MeshServer {
    /// Binds both listeners and assembles the routes. `service_names` are the fully qualified gRPC
    /// service names in `routes`; each gets its own health status. Every call is authenticated
    /// by `authenticator`.
    pub async fn bind(
        config: &MeshConfig,
        routes: Routes,
        service_names: &[&str],
        descriptor_set: &[u8],
        readiness: Readiness,
        metrics: Metrics,
        authenticator: Authenticator,
    ) -> Result<Self, ServerError> {
        let guard = CallGuard::new(authenticator, descriptor_set);
        let rules = RequestRules::new(descriptor_set).map_err(ServerError::Rules)?;
        let listeners = Listeners {
            grpc: config.grpc.listen,
            admin: config.admin.listen,
            grace_period: config.grace_period(),
        };
        let mut server = Self::bind_unguarded(
            listeners,
            routes,
            service_names,
            &[descriptor_set],
            readiness,
            metrics,
        )
        .await?;
        server.guard = Some((guard, rules));
        Ok(server)
    }

    /// Like [`bind`](Self::bind), for routes that authenticate their calls themselves (the
    /// gateway's proxy); reflection serves every set in `descriptor_sets`.
    pub async fn bind_unguarded(
        listeners: Listeners,
        routes: Routes,
        service_names: &[&str],
        descriptor_sets: &[&[u8]],
        readiness: Readiness,
        metrics: Metrics,
    ) -> Result<Self, ServerError> {
        let grpc_listener = bind_listener("grpc", listeners.grpc).await?;
        let admin_listener = bind_listener("admin", listeners.admin).await?;

        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_service_status("", ServingStatus::Serving).await;
        for name in service_names {
            health
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        // Reflection lists the services whose descriptors it holds: the contracts, plus health and
        // reflection themselves so that clients can call them by name.
        let reflection = || {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(
                    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
                );
            for set in descriptor_sets {
                builder = builder.register_encoded_file_descriptor_set(set);
            }
            builder
        };
        let reflection_v1 = reflection()
            .build_v1()
            .map_err(|e| ServerError::Reflection(e.to_string()))?;
        let reflection_v1alpha = reflection()
            .build_v1alpha()
            .map_err(|e| ServerError::Reflection(e.to_string()))?;
        let routes = routes
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);

        Ok(Self {
            grpc_listener,
            admin_listener,
            http: None,
            routes,
            health,
            service_names: service_names.iter().map(|s| (*s).to_owned()).collect(),
            readiness,
            metrics,
            guard: None,
            grace_period: listeners.grace_period,
        })
    }

    /// Also serves `router` on `listen` (HTTP/1.1 and h2c, with the peer address as
    /// `ConnectInfo<SocketAddr>`), drained together with the gRPC listener.
    pub async fn with_http(
        mut self,
        listen: SocketAddr,
        router: axum::Router,
    ) -> Result<Self, ServerError> {
        self.http = Some((bind_listener("http", listen).await?, router));
        Ok(self)
    }

    /// The bound HTTP address, if there is an HTTP listener.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// Verifies callers with `authenticator` from now on (identity verifies against itself at the
    /// address it bound).
    pub fn set_authenticator(&mut self, authenticator: Authenticator) {
        if let Some((guard, rules)) = &self.guard {
            self.guard = Some((guard.with_authenticator(authenticator), rules.clone()));
        }
    }

    /// The bound gRPC address (the real port when configured with port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The bound admin HTTP address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` completes, then drains: health NOT_SERVING and `/readyz` false, no new
    /// connections, in-flight calls get the grace period to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServerError> {
        let grpc_addr = self.grpc_addr();
        let admin_addr = self.admin_addr();
        let (stop_grpc, grpc_stopped) = tokio::sync::oneshot::channel::<()>();
        let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();

        let admin_router = admin::router(self.readiness.clone(), self.metrics.clone());
        let admin_task = tokio::spawn(async move {
            let served = axum::serve(self.admin_listener, admin_router)
                .with_graceful_shutdown(async {
                    let _ = admin_stopped.await;
                })
                .await;
            if let Err(err) = served {
                tracing::error!(error = %err, "admin server failed");
            }
        });

        let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
        let http_task = self.http.map(|(listener, router)| {
            tokio::spawn(async move {
                let served = axum::serve(
                    listener.tap_io(|tcp| {
                        // Small responses must not wait for delayed ACKs.
                        let _ = tcp.set_nodelay(true);
                    }),
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async {
                    let _ = http_stopped.await;
                })
                .await;
                if let Err(err) = served {
                    tracing::error!(error = %err, "http server failed");
                }
            })
        });

        let layer = tower::util::option_layer(
            self.guard
                .map(|(guard, rules)| CallLayer::new(self.metrics.clone(), guard, rules)),
        );
        let server = tonic::transport::Server::builder()
            .layer(layer)
            .add_routes(self.routes)
            // Without TCP_NODELAY, small responses wait for delayed ACKs (about 40 ms).
            .serve_with_incoming_shutdown(
                TcpIncoming::from(self.grpc_listener).with_nodelay(Some(true)),
                async {
                    let _ = grpc_stopped.await;
                },
            );
        tokio::pin!(server);
        tracing::info!(%grpc_addr, %admin_addr, services = ?self.service_names, "serving");

        let outcome = tokio::select! {
            result = &mut server => Some(result),
            () = shutdown => None,
        };
        let result = match outcome {
            Some(result) => result.map_err(ServerError::from),
            None => {
                tracing::info!(grace_ms = self.grace_period.as_millis() as u64, "draining");
                self.readiness.set_draining();
                self.health
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
                for name in &self.service_names {
                    self.health
                        .set_service_status(name, ServingStatus::NotServing)
                        .await;
                }
                let _ = stop_grpc.send(());
                let _ = stop_http.send(());
                let drained = async {
                    let result = (&mut server).await;
                    if let Some(http) = http_task {
                        let _ = http.await;
                    }
                    result
                };
                match tokio::time::timeout(self.grace_period, drained).await {
                    Ok(result) => result.map_err(ServerError::from),
                    Err(_) => {
                        tracing::warn!("grace period over; abandoning unfinished calls");
                        Ok(())
                    }
                }
            }
        };
        let _ = stop_admin.send(());
        let _ = admin_task.await;
        tracing::info!("server stopped");
        result
    }
}
