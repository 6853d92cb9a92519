//! The marketplace's storage in PostgreSQL: providers, categories, listings (with their search
//! columns, [`search`]), reviews with the rating projection, and the completed bookings that allow
//! a review. Every write that others must hear of puts its event in the kit's outbox, in the same
//! transaction.

pub mod categories;
pub mod listings;
pub mod providers;
pub mod reviews;
pub mod search;

use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use taskmesh_events::OutgoingEvent;
use taskmesh_events::outbox::{EnqueueError, Outbox};
use taskmesh_mesh::CallContext;

/// What went wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// No such resource (or not one the caller may know of).
    #[error("{0} not found")]
    NotFound(String),
    /// The etag sent is not the current one.
    #[error("{name} has changed (its etag is {current})")]
    EtagMismatch {
        /// The resource.
        name: String,
        /// Its current etag.
        current: String,
    },
    /// The resource exists already.
    #[error("{name} exists already")]
    Exists {
        /// An `ErrorInfo` reason.
        reason: &'static str,
        /// The resource.
        name: String,
    },
    /// The state of things refuses the change.
    #[error("{message}")]
    Refused {
        /// An `ErrorInfo` reason.
        reason: &'static str,
        /// For the client.
        message: String,
    },
}

impl From<EnqueueError> for StoreError {
    fn from(err: EnqueueError) -> Self {
        match err {
            EnqueueError::Database(err) => Self::Database(err),
            other => Self::Database(sqlx::Error::Protocol(other.to_string())),
        }
    }
}

/// Whether `err` is a unique violation of constraint `constraint`.
pub(crate) fn violates(err: &sqlx::Error, constraint: &str) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.is_unique_violation() && db.constraint() == Some(constraint))
}

/// The marketplace database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    outbox: Outbox,
}

impl Store {
    /// A store on `pool` (migrated), publishing through `outbox`.
    pub fn new(pool: PgPool, outbox: Outbox) -> Self {
        Self { pool, outbox }
    }

    /// The pool, for the benchmark's bare queries and the tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    async fn commit(&self, tx: Transaction<'static, Postgres>) -> Result<(), StoreError> {
        tx.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Puts the event `message` about `resource` into the outbox, inside the change's transaction.
    async fn emit<M: prost::Name>(
        &self,
        conn: &mut PgConnection,
        context: &CallContext,
        resource: &str,
        message: &M,
    ) -> Result<(), StoreError> {
        let event = OutgoingEvent::new(resource, message)
            .caused_by(&context.correlation_id, &context.traceparent);
        Ok(self.outbox.enqueue(conn, &event).await?)
    }
}
