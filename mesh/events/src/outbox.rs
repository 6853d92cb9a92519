//! The outbox table: events are inserted in the transaction of the state change they describe.

use std::sync::Arc;

use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;

use crate::event::OutgoingEvent;

/// Creates the outbox table if it is missing. Services call it at startup, after their migrations.
const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS mesh_outbox (
    seq            BIGSERIAL PRIMARY KEY,
    event_id       UUID        NOT NULL UNIQUE,
    subject        TEXT        NOT NULL,
    event_type     TEXT        NOT NULL,
    resource       TEXT        NOT NULL,
    payload        BYTEA       NOT NULL,
    correlation_id TEXT        NOT NULL,
    traceparent    TEXT,
    tracestate     TEXT,
    occurred_at    TIMESTAMPTZ NOT NULL,
    published_at   TIMESTAMPTZ,
    attempts       INTEGER     NOT NULL DEFAULT 0,
    last_error     TEXT
);
CREATE INDEX IF NOT EXISTS mesh_outbox_pending ON mesh_outbox (seq) WHERE published_at IS NULL;
ALTER TABLE mesh_outbox ADD COLUMN IF NOT EXISTS extra_headers JSONB;
";

/// Arbitrary constant that serializes concurrent replicas creating the table.
const SCHEMA_LOCK: i64 = 0x7461_736b_6f75_7462;

/// Writes events into the outbox and wakes the relay after commit.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    /// A handle whose [`wake`](Self::wake) reaches the relay built with [`Outbox::waker`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates the outbox table when missing; safe to run from several replicas at once.
    pub async fn ensure_schema(pool: &PgPool) -> Result<(), sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
        tx.commit().await
    }

    /// Inserts `event` on the connection of the caller's transaction.
    pub async fn enqueue(
        &self,
        conn: &mut PgConnection,
        event: &OutgoingEvent,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO mesh_outbox (event_id, subject, event_type, resource, payload, \
             correlation_id, traceparent, tracestate, occurred_at, extra_headers) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(event.id)
        .bind(&event.subject)
        .bind(&event.event_type)
        .bind(&event.resource)
        .bind(&event.payload)
        .bind(&event.correlation_id)
        .bind(&event.traceparent)
        .bind(&event.tracestate)
        .bind(event.time)
        .bind(if event.headers.is_empty() {
            None
        } else {
            Some(sqlx::types::Json(&event.headers))
        })
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Tells the relay that new events committed; call after the transaction commits.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The signal the relay waits on.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }
}
