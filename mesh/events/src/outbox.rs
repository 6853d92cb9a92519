//! The outbox table: events are inserted in the transaction of the state change they describe.

use std::sync::Arc;

use sqlx::PgConnection;
use tokio::sync::Notify;

use crate::event::OutgoingEvent;

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
