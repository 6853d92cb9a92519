//! Building and running the tasks service: Vault, PostgreSQL and migrations, NATS, the outbox relay,
//! the read-model projector, the projects client and the gRPC server with its admin port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use taskmesh_contracts::FILE_DESCRIPTOR_SET;
use taskmesh_contracts::tasks_v1::task_admin_service_server::TaskAdminServiceServer;
use taskmesh_contracts::tasks_v1::task_service_server::TaskServiceServer;
use taskmesh_events::consumer::{self, ConsumerSpec};
use taskmesh_events::startup::{self, Backing, StartupError};
use taskmesh_events::{Outbox, OutboxRelay, RelayMetrics, StreamSpec};
use taskmesh_mesh::config::NatsConfig;
use taskmesh_mesh::server::ServerError;
use taskmesh_mesh::{MeshServer, Metrics};
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::config::{Config, SERVICE};
use crate::grpc::{TaskAdmin, TasksService};
use crate::job_status::JobStatusProjector;
use crate::projector::{DURABLE, Projector};
use crate::projects::{EndpointError, ProjectsClient};
use crate::service::Tasks;
use crate::store::event_store::EventStore;
use crate::store::read_model;

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
    /// A rebuild failed.
    #[error("read model rebuild failed: {0}")]
    Rebuild(String),
}

/// `TASKS` on `taskmesh.tasks.v1.>`.
pub fn stream(nats: &NatsConfig) -> StreamSpec {
    StreamSpec::for_context(
        "tasks",
        nats.stream_replicas,
        Duration::from_secs(nats.duplicate_window_secs),
    )
}

/// Empties the read model and replays the event store (the `rebuild-read-model` subcommand).
pub async fn rebuild(config: &Config) -> Result<(i64, i64), AppError> {
    let (_vault, pool) = startup::open_database(&config.mesh, &MIGRATOR).await?;
    let counts = read_model::rebuild(&pool)
        .await
        .map_err(|status| AppError::Rebuild(status.message().to_owned()))?;
    pool.close().await;
    Ok(counts)
}

/// A built service, bound and ready to run.
pub struct App {
    server: MeshServer,
    relay: OutboxRelay,
    projector: (async_nats::Client, ConsumerSpec, Arc<Projector>),
    job_status: (ConsumerSpec, Arc<JobStatusProjector>),
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
    /// Reads secrets, connects, migrates and binds; nothing binds before the secrets are read.
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let Backing {
            vault: _vault,
            pool,
            nats,
            readiness,
        } = startup::open(&config.mesh, SERVICE, &MIGRATOR).await?;
        let projects = ProjectsClient::new(&config.projects.endpoint, config.projects.timeout())?;
        let metrics = Metrics::new(SERVICE);

        let stream = stream(&config.mesh.nats);
        let lag = consumer::lag_gauges(&metrics);
        let outbox = Outbox::new();
        let relay = OutboxRelay::new(
            pool.clone(),
            nats.clone(),
            SERVICE,
            vec![stream.clone()],
            outbox.waker(),
            RelayMetrics::register(&metrics),
        );
        let projector = (
            nats.clone(),
            ConsumerSpec {
                lag: Some(lag.with_label_values(&[DURABLE])),
                ..ConsumerSpec::new(stream, DURABLE, "taskmesh.tasks.v1.>")
            },
            Arc::new(Projector::new(pool.clone())),
        );
        let job_status = (
            ConsumerSpec {
                lag: Some(lag.with_label_values(&[crate::job_status::DURABLE])),
                ..ConsumerSpec::new(
                    StreamSpec::for_context(
                        "execution",
                        config.mesh.nats.stream_replicas,
                        Duration::from_secs(config.mesh.nats.duplicate_window_secs),
                    ),
                    crate::job_status::DURABLE,
                    "taskmesh.execution.v1.>",
                )
            },
            Arc::new(JobStatusProjector::new(pool.clone())),
        );
        let tasks = Tasks::new(
            EventStore::new(pool.clone(), outbox),
            projects,
            config.limits.clone(),
        );
        let routes = Routes::new(TaskServiceServer::new(TasksService::new(tasks))).add_service(
            TaskAdminServiceServer::new(TaskAdmin::new(
                pool.clone(),
                config.mesh.auth.operators.clone(),
            )),
        );
        let names = [
            TaskServiceServer::<TasksService>::NAME,
            TaskAdminServiceServer::<TaskAdmin>::NAME,
        ];
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
            projector,
            job_status,
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

    /// Serves until `shutdown` completes, then drains calls, stops the projector, flushes the
    /// outbox and closes pools.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), AppError> {
        let (stop, stopped) = watch::channel(false);
        let relay = tokio::spawn(self.relay.run(stopped.clone()));
        let (client, spec, handler) = self.projector;
        let projector = tokio::spawn(consumer::run(
            client.clone(),
            spec,
            handler,
            stopped.clone(),
        ));
        let (status_spec, status_handler) = self.job_status;
        let job_status = tokio::spawn(consumer::run(client, status_spec, status_handler, stopped));
        let served = self.server.run(shutdown).await;
        let _ = stop.send(true);
        for (what, task) in [
            ("outbox relay", relay),
            ("projector", projector),
            ("job status", job_status),
        ] {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "{what} task failed");
            }
        }
        if let Err(err) = self.nats.flush().await {
            tracing::warn!(error = %err, "nats flush at shutdown failed");
        }
        self.pool.close().await;
        served.map_err(AppError::from)
    }
}
