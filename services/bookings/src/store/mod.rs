//! The bookings' storage in PostgreSQL: availability per provider ([`availability`]), bookings
//! whose overlaps the database refuses ([`bookings`]), calendar feed tokens ([`feeds`]), the
//! tasks read model of the feeds ([`tasks`]). Every
//! change of a booking puts its event in the kit's outbox in the same transaction.

pub mod availability;
pub mod bookings;
pub mod feeds;
pub mod tasks;

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
    /// No such resource.
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
    /// The exclusion constraint refused the time: another booking holds part of it.
    #[error("{0}: the time is taken")]
    Taken(String),
}

impl From<EnqueueError> for StoreError {
    fn from(err: EnqueueError) -> Self {
        match err {
            EnqueueError::Database(err) => Self::Database(err),
            other => Self::Database(sqlx::Error::Protocol(other.to_string())),
        }
    }
}

/// Whether `err` is the refusal of the `bookings_no_overlap` exclusion constraint.
fn overlaps(err: &sqlx::Error) -> bool {
    err.as_database_error().is_some_and(|db| {
        db.code().as_deref() == Some("23P01") && db.constraint() == Some("bookings_no_overlap")
    })
}

/// The bookings database.
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

    /// The pool (tests and benchmarks read it).
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
