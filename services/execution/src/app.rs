//! Building and running the execution service: Vault, PostgreSQL, NATS, the outbox relay, the
//! intake consumer on `TASKS`, the workers, and the gRPC server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use taskmesh_contracts::FILE_DESCRIPTOR_SET;
use taskmesh_contracts::execution_v1::execution_service_server::ExecutionServiceServer;
use taskmesh_events::consumer::{self, ConsumerSpec};
use taskmesh_events::startup::{self, Backing, StartupError};
use taskmesh_events::{Outbox, OutboxRelay, RelayMetrics, StreamSpec};
use taskmesh_mesh::projects::{EndpointError, ProjectsClient};
use taskmesh_mesh::server::ServerError;
use taskmesh_mesh::{MeshServer, Metrics};
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::config::{Config, SERVICE};
use crate::grpc::ExecutionsService;
use crate::intake::{DURABLE, Intake};
use crate::store::Store;
use crate::worker::{self, WorkerConfig};

/// The service's schema migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Vault, PostgreSQL or NATS could not be opened.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The projects endpoint is malformed.
    #[error(transparent)]
    Projects(#[from] EndpointError),
    /// The server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// A built service, bound and ready to run.
pub struct App {
    server: MeshServer,
    relay: OutboxRelay,
    intake: (async_nats::Client, ConsumerSpec, Arc<Intake>),
    store: Store,
    workers: WorkerConfig,
    pool: PgPool,
    nats: async_nats::Client,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Reads secrets, connects, migrates and binds.
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let Backing {
            vault: _vault,
            pool,
            nats,
            readiness,
        } = startup::open(&config.mesh, SERVICE, &MIGRATOR).await?;
        let metrics = Metrics::new(SERVICE);

        let window = Duration::from_secs(config.mesh.nats.duplicate_window_secs);
        let replicas = config.mesh.nats.stream_replicas;
        let outbox = Outbox::new();
        let relay = OutboxRelay::new(
            pool.clone(),
            nats.clone(),
            SERVICE,
            vec![
                StreamSpec::for_context(SERVICE, replicas, window),
                taskmesh_events::dead_letters::stream(replicas),
            ],
            outbox.waker(),
            RelayMetrics::register(&metrics),
        );
        let store = Store::new(pool.clone(), outbox);
        let intake = (
            nats.clone(),
            ConsumerSpec {
                lag: Some(consumer::lag_gauges(&metrics).with_label_values(&[DURABLE])),
                ..ConsumerSpec::new(
                    StreamSpec::for_context("tasks", replicas, window),
                    DURABLE,
                    "taskmesh.tasks.v1.>",
                )
            },
            Arc::new(Intake::new(store.clone())),
        );
        let workers = WorkerConfig {
            concurrency: config.workers.concurrency,
            lease: config.lease(),
            poll: Duration::from_millis(config.workers.poll_ms),
            id: format!(
                "{SERVICE}-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
        };
        let projects = ProjectsClient::from_config(&config.projects)?;
        let routes = Routes::new(ExecutionServiceServer::new(ExecutionsService::new(
            store.clone(),
            projects,
        )));
        let names = [ExecutionServiceServer::<ExecutionsService>::NAME];
        let server = MeshServer::bind(
            &config.mesh,
            routes,
            &names,
            FILE_DESCRIPTOR_SET,
            readiness,
            metrics,
        )
        .await?;
        Ok(Self {
            server,
            relay,
            intake,
            store,
            workers,
            pool,
            nats,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.grpc_addr()
    }

    /// The bound admin HTTP address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.server.admin_addr()
    }

    /// Serves until `shutdown` completes; running attempts are abandoned at shutdown and their
    /// leases expire, so another worker picks them up.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), AppError> {
        let (stop, stopped) = watch::channel(false);
        let relay = tokio::spawn(self.relay.run(stopped.clone()));
        let (client, spec, handler) = self.intake;
        let intake = tokio::spawn(consumer::run(client, spec, handler, stopped.clone()));
        let workers = worker::spawn(&self.store, &self.workers, &stopped);
        let served = self.server.run(shutdown).await;
        let _ = stop.send(true);
        for task in [relay, intake] {
            let _ = task.await;
        }
        for worker in workers {
            worker.abort();
        }
        let _ = self.nats.flush().await;
        self.pool.close().await;
        served.map_err(AppError::from)
    }
}
