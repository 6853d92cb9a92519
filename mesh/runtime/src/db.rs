//! PostgreSQL: a pool logged in with the credentials read from Vault, and the service's migrations.

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

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
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
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

/// Runs the service's migrations; concurrent replicas serialize on sqlx's advisory lock.
pub async fn migrate(pool: &PgPool, migrator: &Migrator) -> Result<(), DatabaseError> {
    migrator.run(pool).await?;
    Ok(())
}
