//! Building and running the identity service: Vault (database login and signing keys), PostgreSQL
//! and migrations, NATS, the outbox relay, the saga consumer, the key reloader and the gRPC server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use taskmesh_contracts::FILE_DESCRIPTOR_SET;
use taskmesh_contracts::identity_v1::api_key_service_server::ApiKeyServiceServer;
use taskmesh_contracts::identity_v1::identity_service_server::IdentityServiceServer;
use taskmesh_events::consumer::{self, ConsumerSpec};
use taskmesh_events::startup::{self, Backing, StartupError};
use taskmesh_events::{Outbox, OutboxRelay, RelayMetrics, StreamSpec};
use taskmesh_mesh::auth::{AuthConfig, Authenticator};
use taskmesh_mesh::server::ServerError;
use taskmesh_mesh::{MeshServer, Metrics, VaultSession};
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::config::{Config, SERVICE};
use crate::grpc::{IdentityHandlers, Lifetimes};
use crate::keys::{self, KeyRing};
use crate::saga::{self, RegistrationSaga};
use crate::store::Store;

/// The service's schema migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why the service could not start or stopped with an error. Each is one line without secrets.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Vault, PostgreSQL or NATS could not be opened.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The signing keys in Vault are missing or unusable.
    #[error("signing keys: {0}")]
    Keys(String),
    /// The server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// A built service, bound and ready to run.
pub struct App {
    server: MeshServer,
    relay: OutboxRelay,
    saga: (ConsumerSpec, Arc<RegistrationSaga>),
    reloader: (Arc<VaultSession>, KeyRing, Duration),
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

/// `IDENTITY` on `taskmesh.identity.v1.>`.
pub fn stream(nats: &taskmesh_mesh::config::NatsConfig) -> StreamSpec {
    StreamSpec::for_context(
        SERVICE,
        nats.stream_replicas,
        Duration::from_secs(nats.duplicate_window_secs),
    )
}

impl App {
    /// Logs in to Vault, reads the database login and the signing keys, connects and migrates,
    /// connects NATS and binds the listeners. Nothing is bound before the secrets are read.
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let Backing {
            vault,
            pool,
            nats,
            readiness,
        } = startup::open(&config.mesh, SERVICE, &MIGRATOR).await?;
        let stored = vault
            .read_secret::<keys::StoredKeys>(keys::SECRET_NAME)
            .await
            .map_err(|e| AppError::Keys(e.to_string()))?;
        let ring = KeyRing::new(&stored, &config.mesh.auth.issuer)
            .map_err(|e| AppError::Keys(e.to_string()))?;
        let metrics = Metrics::new(SERVICE);

        let outbox = Outbox::new();
        let relay = OutboxRelay::new(
            pool.clone(),
            nats.clone(),
            SERVICE,
            vec![stream(&config.mesh.nats)],
            outbox.waker(),
            RelayMetrics::register(&metrics),
        );
        let store = Store::new(pool.clone(), outbox);
        let lag = consumer::lag_gauges(&metrics);
        let saga = (
            ConsumerSpec {
                lag: Some(lag.with_label_values(&[saga::DURABLE])),
                ..ConsumerSpec::new(
                    StreamSpec::for_context(
                        "projects",
                        config.mesh.nats.stream_replicas,
                        Duration::from_secs(config.mesh.nats.duplicate_window_secs),
                    ),
                    saga::DURABLE,
                    "taskmesh.projects.v1.>",
                )
            },
            Arc::new(RegistrationSaga::new(store.clone())),
        );
        let handlers = IdentityHandlers::new(
            store,
            ring.clone(),
            Lifetimes {
                access_secs: config.identity.access_token_ttl_secs,
                refresh_secs: config.identity.refresh_token_ttl_secs,
            },
        );
        let routes = Routes::new(IdentityServiceServer::new(handlers.clone()))
            .add_service(ApiKeyServiceServer::new(handlers));
        let names = [
            IdentityServiceServer::<IdentityHandlers>::NAME,
            ApiKeyServiceServer::<IdentityHandlers>::NAME,
        ];
        let mut server = MeshServer::bind(
            &config.mesh,
            routes,
            &names,
            FILE_DESCRIPTOR_SET,
            readiness,
            metrics,
        )
        .await?;
        // Identity verifies its own callers against the address it actually bound.
        let own = AuthConfig {
            identity_endpoint: format!("http://{}", server.grpc_addr()),
            ..config.mesh.auth.clone()
        };
        server.set_authenticator(
            Authenticator::new(&own).map_err(|e| AppError::Server(ServerError::Auth(e)))?,
        );
        Ok(Self {
            server,
            relay,
            saga,
            reloader: (
                vault,
                ring,
                Duration::from_millis(config.identity.key_reload_ms),
            ),
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

    /// Serves until `shutdown` completes, then drains calls, stops the consumer and the key
    /// reloader, flushes the outbox and closes pools.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), AppError> {
        let (stop, stopped) = watch::channel(false);
        let relay = tokio::spawn(self.relay.run(stopped.clone()));
        let (spec, handler) = self.saga;
        let saga = tokio::spawn(consumer::run(
            self.nats.clone(),
            spec,
            handler,
            stopped.clone(),
        ));
        let (vault, ring, every) = self.reloader;
        let reloader = tokio::spawn(reload_keys(vault, ring, every, stopped));
        let served = self.server.run(shutdown).await;
        let _ = stop.send(true);
        for (what, task) in [
            ("outbox relay", relay),
            ("saga consumer", saga),
            ("key reloader", reloader),
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

/// Reads the signing keys from Vault every `every`, so that a rotation or retirement done by
/// provisioning takes effect without a restart. A failed read keeps the keys in use.
async fn reload_keys(
    vault: Arc<VaultSession>,
    ring: KeyRing,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        match vault
            .read_secret::<keys::StoredKeys>(keys::SECRET_NAME)
            .await
        {
            Ok(stored) => {
                if let Err(err) = ring.replace(&stored).await {
                    tracing::warn!(error = %err, "ignoring unusable signing keys");
                }
            }
            Err(err) => tracing::warn!(error = %err, "reading the signing keys failed"),
        }
    }
}
