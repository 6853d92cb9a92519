//! The identity service as the service kit sees it: its name, port, settings and migrations, and
//! what it wires: the identity and API-key gRPC services (verifying callers against itself), the
//! registration-saga consumer and the signing-key reloader.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::attempts::FailedSignIns;

use sqlx::migrate::Migrator;
use taskmesh_contracts::identity_v1::api_key_service_server::ApiKeyServiceServer;
use taskmesh_contracts::identity_v1::identity_service_server::IdentityServiceServer;
use taskmesh_mesh::VaultSession;
use taskmesh_service::{NoCommand, Service, Stop, Wiring};

use crate::config::Settings;
use crate::error::Error;
use crate::grpc::{IdentityHandlers, Lifetimes};
use crate::keys::{self, KeyRing};
use crate::store::Store;

/// The identity service.
#[derive(Debug)]
pub struct Identity;

/// The built service (tests build it on ephemeral ports).
pub type App = taskmesh_service::App<Identity>;

impl Service for Identity {
    const NAME: &'static str = "identity";
    const GRPC_PORT: u16 = 50051;
    const MIGRATIONS: &'static Migrator = &sqlx::migrate!("./migrations");
    type Settings = Settings;
    type Command = NoCommand;
    type Error = Error;

    async fn build(wiring: &mut Wiring<Self>) -> Result<(), Error> {
        let settings = wiring.settings().identity.clone();
        let vault = Arc::clone(wiring.vault());
        let stored = vault
            .read_secret::<keys::StoredKeys>(keys::SECRET_NAME)
            .await?;
        let ring = KeyRing::new(&stored, &wiring.config().mesh.auth.issuer)?;
        let store = Store::new(wiring.pool().clone(), wiring.outbox());
        crate::events::consume(wiring, &store);
        let every = Duration::from_millis(settings.key_reload_ms);
        let reloaded = ring.clone();
        wiring.spawn("key reloader", move |stop| {
            reload_keys(vault, reloaded, every, stop)
        });
        let timeout = Duration::from_secs(settings.registration_timeout_secs);
        let sweeper = store.clone();
        wiring.spawn("registration timeout", move |stop| {
            expire_registrations(sweeper, timeout, stop)
        });
        let handlers = IdentityHandlers::new(
            store,
            ring,
            Lifetimes {
                access_secs: settings.access_token_ttl_secs,
                refresh_secs: settings.refresh_token_ttl_secs,
            },
            FailedSignIns::new(
                settings.failed_sign_ins_per_account,
                Duration::from_secs(settings.failed_sign_in_window_secs),
            ),
        );
        wiring
            .serve(IdentityServiceServer::new(handlers.clone()))
            .serve(ApiKeyServiceServer::new(handlers))
            .verify_callers_against_self();
        Ok(())
    }
}

/// Reads the signing keys from Vault every `every`, so that a rotation or retirement done by
/// provisioning takes effect without a restart. A failed read keeps the keys in use.
async fn reload_keys(
    vault: Arc<VaultSession>,
    ring: KeyRing,
    every: Duration,
    mut stop: Stop,
) -> Result<(), taskmesh_service::BoxError> {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.stopped() => return Ok(()),
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

/// The registration saga's timeout: every tenth of `timeout` (between 100 ms and 30 s), pending
/// registrations older than `timeout` are cancelled (RegistrationCancelled with
/// `REGISTRATION_TIMED_OUT`; projects removes a personal organization it created late). A failed
/// sweep is logged and tried again at the next tick.
async fn expire_registrations(
    store: Store,
    timeout: Duration,
    mut stop: Stop,
) -> Result<(), taskmesh_service::BoxError> {
    let every = (timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(30));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.stopped() => return Ok(()),
        }
        let context = taskmesh_mesh::CallContext::background();
        match store.expire_registrations(&context, timeout).await {
            Ok(freed) => {
                for user in freed {
                    tracing::warn!(%user, timeout_secs = timeout.as_secs(), "registration timed out; cancelled");
                }
            }
            Err(err) => {
                tracing::warn!(error = %taskmesh_service::chain(&err), "sweeping pending registrations failed")
            }
        }
    }
}
