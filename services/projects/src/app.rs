//! Building and running the projects service: Vault first, then PostgreSQL and migrations, NATS,
//! the outbox relay, the registration-saga consumer, and the gRPC server with its admin port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use taskmesh_contracts::FILE_DESCRIPTOR_SET;
use taskmesh_contracts::projects_v1::board_service_server::BoardServiceServer;
use taskmesh_contracts::projects_v1::member_service_server::MemberServiceServer;
use taskmesh_contracts::projects_v1::organization_service_server::OrganizationServiceServer;
use taskmesh_contracts::projects_v1::project_service_server::ProjectServiceServer;
use taskmesh_events::consumer::{self, ConsumerSpec};
use taskmesh_events::startup::{self, Backing, StartupError};
use taskmesh_events::{Outbox, OutboxRelay, RelayMetrics, StreamSpec};
use taskmesh_mesh::server::ServerError;
use taskmesh_mesh::{MeshServer, Metrics};
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::config::{Config, SERVICE};
use crate::grpc::{BoardsService, MembersService, OrganizationsService, ProjectsService};
use crate::saga::{self, PersonalOrganizations};
use crate::store::Store;

/// The service's schema migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why the service could not start or stopped with an error. Each is one line without secrets.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Vault, PostgreSQL or NATS could not be opened.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// A built service, bound and ready to run.
pub struct App {
    server: MeshServer,
    relay: OutboxRelay,
    saga: (ConsumerSpec, Arc<PersonalOrganizations>),
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
    /// Logs in to Vault, reads the database credentials, connects and migrates, connects NATS and
    /// binds the listeners. Nothing is bound before the secrets are read.
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let Backing {
            vault: _vault,
            pool,
            nats,
            readiness,
        } = startup::open(&config.mesh, SERVICE, &MIGRATOR).await?;
        let metrics = Metrics::new(SERVICE);

        let outbox = Outbox::new();
        let relay = OutboxRelay::new(
            pool.clone(),
            nats.clone(),
            SERVICE,
            vec![crate::events::stream(&config.mesh.nats)],
            outbox.waker(),
            RelayMetrics::register(&metrics),
        );
        let store = Store::new(pool.clone(), outbox, config.limits.clone());
        let lag = consumer::lag_gauges(&metrics);
        let saga = (
            ConsumerSpec {
                lag: Some(lag.with_label_values(&[saga::DURABLE])),
                ..ConsumerSpec::new(
                    StreamSpec::for_context(
                        "identity",
                        config.mesh.nats.stream_replicas,
                        Duration::from_secs(config.mesh.nats.duplicate_window_secs),
                    ),
                    saga::DURABLE,
                    saga::SUBJECT,
                )
            },
            Arc::new(PersonalOrganizations::new(store.clone())),
        );
        let routes = Routes::new(OrganizationServiceServer::new(OrganizationsService::new(
            store.clone(),
        )))
        .add_service(ProjectServiceServer::new(ProjectsService::new(
            store.clone(),
        )))
        .add_service(BoardServiceServer::new(BoardsService::new(store.clone())))
        .add_service(MemberServiceServer::new(MembersService::new(store)));
        let names = [
            OrganizationServiceServer::<OrganizationsService>::NAME,
            ProjectServiceServer::<ProjectsService>::NAME,
            BoardServiceServer::<BoardsService>::NAME,
            MemberServiceServer::<MembersService>::NAME,
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
            saga,
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

    /// Serves until `shutdown` completes, then drains calls, flushes the outbox and closes pools.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), AppError> {
        let (stop, stopped) = watch::channel(false);
        let relay = tokio::spawn(self.relay.run(stopped.clone()));
        let (spec, handler) = self.saga;
        let saga = tokio::spawn(consumer::run(self.nats.clone(), spec, handler, stopped));
        let served = self.server.run(shutdown).await;
        let _ = stop.send(true);
        for (what, task) in [("outbox relay", relay), ("registration consumer", saga)] {
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
