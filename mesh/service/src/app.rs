//! A service's process: [`App::build`] opens what the service stands on and binds, [`App::run`]
//! serves until the shutdown future completes and then drains in order.

use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use sqlx::PgPool;
use taskmesh_clients::IdentityClient;
use taskmesh_events::startup::{self, Backing};
use taskmesh_events::{Outbox, OutboxRelay, RelayMetrics};
use taskmesh_mesh::auth::AuthConfig;
use taskmesh_mesh::server::ServerError;
use taskmesh_mesh::{MeshServer, Metrics, VaultSession};
use tokio::sync::watch;

use crate::background::{Background, Running};
use crate::declaration::{Config, Service, Wiring, stream_of};
use crate::error::KitError;

/// A built service, bound and ready to run.
pub struct App<S: Service> {
    server: MeshServer,
    relay: OutboxRelay,
    background: Vec<Background>,
    pool: PgPool,
    nats: async_nats::Client,
    // Held so the session lives as long as the service (its renewal runs as a background task).
    _vault: Arc<VaultSession>,
    grace: std::time::Duration,
    service: PhantomData<fn() -> S>,
}

impl<S: Service> std::fmt::Debug for App<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("service", &S::NAME)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl<S: Service> App<S> {
    /// Logs in to Vault, reads the database login, connects and migrates, connects NATS, lets the
    /// service wire itself and binds the listeners. Nothing is bound before the secrets are read.
    pub async fn build(config: Config<S>) -> Result<Self, KitError> {
        let Backing {
            vault,
            pool,
            nats,
            readiness,
        } = startup::open(&config.mesh, S::NAME, S::MIGRATIONS).await?;
        let metrics = Metrics::new(S::NAME);
        let mut wiring = Wiring::<S> {
            config,
            vault,
            pool,
            nats,
            metrics,
            outbox: Outbox::new(),
            routes: None,
            service_names: Vec::new(),
            background: Vec::new(),
            consumer_lag: None,
            consumer_age: None,
            consumer_handling: None,
            verify_against_self: false,
        };
        // The Vault token is renewed (or the service logs in again) for as long as it runs.
        let session = Arc::clone(&wiring.vault);
        wiring.spawn("vault token", move |mut stop| async move {
            session
                .keep_alive(async move { stop.stopped().await })
                .await
                .map_err(Into::into)
        });
        S::build(&mut wiring)
            .await
            .map_err(|err| KitError::Build(Box::new(err)))?;
        let Wiring {
            config,
            vault,
            pool,
            nats,
            metrics,
            outbox,
            routes,
            service_names,
            background,
            verify_against_self,
            ..
        } = wiring;
        let routes = routes.ok_or(KitError::NoServices)?;

        let nats_config = &config.mesh.nats;
        let relay = OutboxRelay::new(
            pool.clone(),
            nats.clone(),
            S::NAME,
            vec![
                stream_of(nats_config, S::NAME),
                taskmesh_events::dead_letters::stream(nats_config.stream_replicas),
            ],
            outbox.waker(),
            RelayMetrics::register(&metrics),
        );
        let authenticator =
            IdentityClient::authenticator(&config.mesh.auth).map_err(ServerError::Auth)?;
        let mut server = MeshServer::bind(
            &config.mesh,
            routes,
            &service_names,
            S::descriptor_set(),
            readiness,
            metrics,
            authenticator,
        )
        .await?;
        if verify_against_self {
            let own = AuthConfig {
                identity_endpoint: format!("http://{}", server.grpc_addr()),
                ..config.mesh.auth.clone()
            };
            server
                .set_authenticator(IdentityClient::authenticator(&own).map_err(ServerError::Auth)?);
        }
        Ok(Self {
            server,
            relay,
            background,
            pool,
            nats,
            _vault: vault,
            grace: config.mesh.grace_period(),
            service: PhantomData,
        })
    }

    /// The bound gRPC address (the real port when configured with port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.grpc_addr()
    }

    /// The bound admin HTTP address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.server.admin_addr()
    }

    /// Serves until `shutdown` completes (or a background task fails), then drains in order: calls
    /// (health NOT_SERVING, no new connections, in-flight calls within the grace period), then the
    /// consumers and background tasks, then the outbox relay's last flush, then NATS and the pool.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), KitError> {
        let (stop_relay, relay_stopped) = watch::channel(false);
        let relay = tokio::spawn(self.relay.run(relay_stopped));
        let mut background = Running::start(self.background);

        let mut early = None;
        let stop = async {
            tokio::select! {
                () = shutdown => {}
                (task, ended) = background.first_failure() => {
                    tracing::error!(task = %task, "background task {ended}; stopping the service");
                    early = Some(KitError::Background { task, why: ended.to_string() });
                }
            }
        };
        let served = self.server.run(stop).await;

        let during_drain = background.drain(self.grace).await;
        let _ = stop_relay.send(true);
        if let Err(err) = relay.await {
            tracing::error!(error = %err, "background task `outbox relay` panicked");
        }
        if let Err(err) = self.nats.flush().await {
            tracing::warn!(error = %err, "NATS flush at shutdown failed");
        }
        self.pool.close().await;
        served?;
        match early.or(during_drain) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}
