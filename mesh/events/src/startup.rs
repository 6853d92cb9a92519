//! What every service opens at start-up, in this order: a Vault session (nothing starts without
//! secrets), the PostgreSQL pool with the credentials read from it, the outbox and inbox migrations
//! with the service's own, then the NATS client logged in as the service. The readiness it returns watches all three.

use std::sync::Arc;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use taskmesh_mesh::config::MeshConfig;
use taskmesh_mesh::db::{self, DatabaseError};
use taskmesh_mesh::vault::VaultError;
use taskmesh_mesh::{NatsCredentials, Readiness, VaultSession};

/// Why a backing system could not be opened. Each is one line without secrets.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Vault bootstrap failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The database could not be used.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// The NATS client could not be created.
    #[error("cannot create the NATS client: {0}")]
    Nats(#[from] async_nats::ConnectError),
}

/// The opened backing systems of a service.
#[derive(Debug)]
pub struct Backing {
    /// The Vault session (kept for renewal and readiness).
    pub vault: Arc<VaultSession>,
    /// The migrated database.
    pub pool: PgPool,
    /// The NATS client, named after the service.
    pub nats: async_nats::Client,
    /// Readiness with the database, NATS and Vault checks registered.
    pub readiness: Readiness,
}

/// Logs in to Vault, reads the database credentials, connects, and runs the outbox and inbox
/// migrations of this crate together with `migrator`. The credentials are dropped once the pool
/// holds them.
pub async fn open_database(
    mesh: &MeshConfig,
    migrator: &Migrator,
) -> Result<(Arc<VaultSession>, PgPool), StartupError> {
    let vault = Arc::new(VaultSession::login(&mesh.vault).await?);
    let credentials = vault.database_credentials().await?;
    tracing::info!(user = %credentials.username, "database credentials read from vault");
    let pool = db::connect(&mesh.database, &credentials).await?;
    drop(credentials);
    db::migrate(&pool, &[&crate::MIGRATOR, migrator]).await?;
    Ok((vault, pool))
}

/// The service's NATS login from Vault (`<secret_path>/nats`), unless the configured URL carries
/// one (an operator's override) or there is none (a broker without users).
pub async fn nats_login(
    mesh: &MeshConfig,
    vault: &VaultSession,
) -> Result<Option<NatsCredentials>, StartupError> {
    if crate::nats::url_has_login(&mesh.nats.url) {
        return Ok(None);
    }
    let login = vault.nats_credentials().await?;
    match &login {
        Some(login) => tracing::info!(user = %login.username, "NATS login read from vault"),
        None => tracing::info!("no NATS login in vault; connecting without a user"),
    }
    Ok(login)
}

/// [`open_database`], then the NATS client (logged in as the service's user) and the readiness
/// checks of all three.
pub async fn open(
    mesh: &MeshConfig,
    service: &str,
    migrator: &Migrator,
) -> Result<Backing, StartupError> {
    let (vault, pool) = open_database(mesh, migrator).await?;
    let login = nats_login(mesh, &vault).await?;
    let nats = crate::nats::connect(&mesh.nats.url, service, login.as_ref()).await?;
    drop(login);
    let readiness = Readiness::default();
    readiness.add_database(&pool);
    crate::nats::add_readiness(&readiness, &nats);
    readiness.add_vault(&vault);
    Ok(Backing {
        vault,
        pool,
        nats,
        readiness,
    })
}
