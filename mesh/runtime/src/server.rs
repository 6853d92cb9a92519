//! The gRPC server every service runs: its routes plus grpc.health.v1, reflection v1 and v1alpha
//! from the descriptor set, behind [`CallLayer`](crate::layer::CallLayer); the admin HTTP port
//! beside it; graceful shutdown that reports NOT_SERVING, stops accepting and drains in-flight calls
//! within the grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

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
    routes: Routes,
    health: HealthReporter,
    service_names: Vec<String>,
    readiness: Readiness,
    metrics: Metrics,
    guard: CallGuard,
    grace_period: Duration,
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
    /// service names in `routes`; each gets its own health status.
    pub async fn bind(
        config: &MeshConfig,
        routes: Routes,
        service_names: &[&str],
        descriptor_set: &[u8],
        readiness: Readiness,
        metrics: Metrics,
    ) -> Result<Self, ServerError> {
        let guard = CallGuard::new(Authenticator::new(&config.auth)?, descriptor_set);
        let grpc_listener = TcpListener::bind(config.grpc.listen)
            .await
            .map_err(|source| ServerError::Bind {
                what: "grpc",
                addr: config.grpc.listen,
                source,
            })?;
        let admin_listener = TcpListener::bind(config.admin.listen)
            .await
            .map_err(|source| ServerError::Bind {
                what: "admin",
                addr: config.admin.listen,
                source,
            })?;

        let (health, health_service) = tonic_health::server::health_reporter();
        for name in service_names {
            health
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        // Reflection lists the services whose descriptors it holds: the service's own contracts,
        // plus health and reflection themselves so that clients can call them by name.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(descriptor_set)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
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
            routes,
            health,
            service_names: service_names.iter().map(|s| (*s).to_owned()).collect(),
            readiness,
            metrics,
            guard,
            grace_period: config.grace_period(),
        })
    }

    /// Verifies callers with `authenticator` instead of the one built from `auth` (identity
    /// verifies against itself at the address it bound).
    pub fn set_authenticator(&mut self, authenticator: Authenticator) {
        self.guard = self.guard.with_authenticator(authenticator);
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

        let server = tonic::transport::Server::builder()
            .layer(CallLayer::new(self.metrics.clone(), self.guard.clone()))
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
                match tokio::time::timeout(self.grace_period, &mut server).await {
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
