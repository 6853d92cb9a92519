//! PostgreSQL: a pool logged in with the credentials read from Vault, and the service's migrations.

use std::time::Duration;

use futures::future::BoxFuture;
use secrecy::ExposeSecret;
use sqlx::migrate::{Migration, MigrationSource, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgPool};

use crate::config::DatabaseConfig;
use crate::vault::DatabaseCredentials;

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The first connection failed (wrong password, database missing, server down).
    #[error("cannot connect to database {database} at {host}:{port} as {user}: {reason}")]
    Connect {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Database name.
        database: String,
        /// Login role.
        user: String,
        /// What PostgreSQL said.
        reason: String,
    },
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Whether a database error is about the database rather than the statement: no connection
/// (I/O, TLS, protocol, pool timed out or closed), the server shutting down or not accepting
/// connections (SQLSTATE classes 08, 53, 57P, 58), or a conflict worth retrying (serialization
/// failure 40001, deadlock 40P01, lock not available 55P03).
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            let code = code.as_ref();
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || code.starts_with("58")
                || matches!(code, "40001" | "40P01" | "55P03")
        }),
        _ => false,
    }
}

/// A connection that waited in the pool longer than this is checked before it is handed out.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

/// Pool settings of every taskmesh pool. sqlx checks every connection with a round trip before
/// it hands it out, which doubled the round trips of a busy service (one query per call); here
/// only a connection that sat idle for [`CHECK_IDLE_AFTER`] is checked (one the database may
/// have dropped meanwhile, after a restart say), and one found broken is replaced, not returned.
pub fn pool_options(max_connections: u32, acquire_timeout: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= CHECK_IDLE_AFTER {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Connects a pool and checks it with one connection, so a bad password fails at startup.
pub async fn connect(
    config: &DatabaseConfig,
    credentials: &DatabaseCredentials,
) -> Result<PgPool, DatabaseError> {
    let database = credentials
        .database
        .clone()
        .unwrap_or_else(|| config.name.clone());
    let options = PgConnectOptions::new()
        .host(&config.host)
        .port(config.port)
        .username(&credentials.username)
        .password(credentials.password.expose_secret())
        .database(&database)
        .application_name("taskmesh");
    pool_options(
        config.max_connections,
        Duration::from_millis(config.acquire_timeout_ms),
    )
    .connect_with(options)
    .await
    .map_err(|e| DatabaseError::Connect {
        host: config.host.clone(),
        port: config.port,
        database,
        user: credentials.username.clone(),
        reason: e.to_string().replace('\n', " "),
    })
}

/// Runs the migrations of every migrator in `migrators` as one ordered list (by version), so the
/// shared tables of the runtime and the service's own live in one history; concurrent replicas
/// serialize on sqlx's advisory lock.
pub async fn migrate(pool: &PgPool, migrators: &[&Migrator]) -> Result<(), DatabaseError> {
    let mut all: Vec<Migration> = migrators
        .iter()
        .flat_map(|migrator| migrator.iter().cloned())
        .collect();
    all.sort_by_key(|migration| migration.version);
    Migrator::new(Combined(all)).await?.run(pool).await?;
    Ok(())
}

/// Migrations already in memory, as a source for [`Migrator::new`].
#[derive(Debug)]
struct Combined(Vec<Migration>);

impl MigrationSource<'static> for Combined {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(std::future::ready(Ok(self.0)))
    }
}

/// Claims `caller`'s `request_id` (AIP-155) for `method` on behalf of `resource`, in the service's
/// `request_ids` table (`method, caller, request_id, resource`). Returns the resource a previous
/// call of the same caller with the same id made when the id was used already; the caller then
/// returns that one. Ids are per caller: another caller's id neither replays nor blocks. A
/// concurrent call with the same id waits on the row lock until the first one commits.
pub async fn claim_request_id(
    conn: &mut sqlx::PgConnection,
    method: &str,
    caller: &str,
    request_id: uuid::Uuid,
    resource: &str,
) -> Result<Option<String>, sqlx::Error> {
    let inserted: Option<(String,)> = sqlx::query_as(
        "INSERT INTO request_ids (method, caller, request_id, resource) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING RETURNING resource",
    )
    .bind(method)
    .bind(caller)
    .bind(request_id)
    .bind(resource)
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_some() {
        return Ok(None);
    }
    sqlx::query_scalar(
        "SELECT resource FROM request_ids WHERE method = $1 AND caller = $2 AND request_id = $3",
    )
    .bind(method)
    .bind(caller)
    .bind(request_id)
    .fetch_one(&mut *conn)
    .await
    .map(Some)
}
