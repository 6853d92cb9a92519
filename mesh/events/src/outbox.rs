//! The outbox table: events are inserted in the transaction of the state change they describe.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::event::OutgoingEvent;

/// Largest event, payload and headers together: NATS refuses messages over its `max_payload`
/// (1 MiB by default), so a larger event is refused when the change is made, never found out by
/// the relay.
pub const MAX_EVENT_BYTES: usize = 896 * 1024;

/// Why an event could not be put in the outbox.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The event is larger than [`MAX_EVENT_BYTES`].
    #[error(
        "the change would publish an event of {size} bytes on {subject}; events are at most {max} bytes"
    )]
    TooLarge {
        /// The event's subject.
        subject: String,
        /// Its size with headers.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// For stores that speak `sqlx::Error`: a too large event becomes an encoding error (an internal
/// error, logged), which only events the service composes itself can reach.
impl From<EnqueueError> for sqlx::Error {
    fn from(err: EnqueueError) -> Self {
        match err {
            EnqueueError::Database(err) => err,
            too_large @ EnqueueError::TooLarge { .. } => sqlx::Error::Encode(Box::new(too_large)),
        }
    }
}

impl From<EnqueueError> for tonic::Status {
    /// A too large event is the request's fault (INVALID_ARGUMENT); a database failure is not.
    fn from(err: EnqueueError) -> Self {
        match err {
            EnqueueError::Database(err) => taskmesh_mesh::status::db_error(err),
            too_large @ EnqueueError::TooLarge { .. } => {
                tonic::Status::invalid_argument(too_large.to_string())
            }
        }
    }
}

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

    /// Inserts `event` on the connection of the caller's transaction; refuses one larger than
    /// [`MAX_EVENT_BYTES`].
    pub async fn enqueue(
        &self,
        conn: &mut PgConnection,
        event: &OutgoingEvent,
    ) -> Result<(), EnqueueError> {
        check_size(event)?;
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

    /// The outbox rows of `events` for a statement that writes them together with the change they
    /// describe ([`OutboxRows`]); refuses an event larger than [`MAX_EVENT_BYTES`].
    pub fn rows(&self, events: &[OutgoingEvent]) -> Result<OutboxRows, EnqueueError> {
        events.iter().try_for_each(check_size)?;
        Ok(OutboxRows {
            ids: events.iter().map(|e| e.id).collect(),
            subjects: events.iter().map(|e| e.subject.clone()).collect(),
            event_types: events.iter().map(|e| e.event_type.clone()).collect(),
            resources: events.iter().map(|e| e.resource.clone()).collect(),
            payloads: events.iter().map(|e| e.payload.clone()).collect(),
            correlation_ids: events.iter().map(|e| e.correlation_id.clone()).collect(),
            traceparents: events.iter().map(|e| e.traceparent.clone()).collect(),
            tracestates: events.iter().map(|e| e.tracestate.clone()).collect(),
            times: events.iter().map(|e| e.time).collect(),
            headers: events
                .iter()
                .map(|e| (!e.headers.is_empty()).then(|| Json(e.headers.clone())))
                .collect(),
        })
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

/// An outbox row the relay set aside after repeated publish failures.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SetAside {
    /// Its place in the outbox.
    pub seq: i64,
    /// The event id (`Nats-Msg-Id`).
    pub event_id: uuid::Uuid,
    /// Where it was to be published.
    pub subject: String,
    /// Its payload type.
    pub event_type: String,
    /// The resource it is about.
    pub resource: String,
    /// Publish attempts that failed while others went through.
    pub attempts: i32,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was set aside.
    pub set_aside_at: chrono::DateTime<chrono::Utc>,
}

/// The rows set aside, oldest first, at most `limit`.
pub async fn set_aside(pool: &sqlx::PgPool, limit: i64) -> Result<Vec<SetAside>, sqlx::Error> {
    sqlx::query_as(
        "SELECT seq, event_id, subject, event_type, resource, attempts, last_error, set_aside_at \
         FROM mesh_outbox WHERE set_aside_at IS NOT NULL AND published_at IS NULL \
         ORDER BY seq LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Puts set-aside rows back in line for the relay (with their attempts reset), once the cause is
/// fixed: the row `seq`, or every one when `None`. Returns how many; the relay of any replica takes
/// them on its next poll.
pub async fn retry_set_aside(pool: &sqlx::PgPool, seq: Option<i64>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE mesh_outbox SET set_aside_at = NULL, attempts = 0 \
         WHERE set_aside_at IS NOT NULL AND published_at IS NULL AND ($1::BIGINT IS NULL OR seq = $1)",
    )
    .bind(seq)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

fn check_size(event: &OutgoingEvent) -> Result<(), EnqueueError> {
    let size = event.size();
    if size > MAX_EVENT_BYTES {
        return Err(EnqueueError::TooLarge {
            subject: event.subject.clone(),
            size,
            max: MAX_EVENT_BYTES,
        });
    }
    Ok(())
}

/// Events as outbox rows in column arrays, for one statement that inserts them together with the
/// state change they describe: a store that writes its change with data-modifying `WITH` queries
/// adds [`insert_sql`](Self::insert_sql) as one more and [`bind`](Self::bind)s the arrays, and the
/// change with its events costs one round trip to the database and no explicit transaction.
#[derive(Debug)]
pub struct OutboxRows {
    ids: Vec<Uuid>,
    subjects: Vec<String>,
    event_types: Vec<String>,
    resources: Vec<String>,
    payloads: Vec<Vec<u8>>,
    correlation_ids: Vec<String>,
    traceparents: Vec<Option<String>>,
    tracestates: Vec<Option<String>>,
    times: Vec<DateTime<Utc>>,
    headers: Vec<Option<Json<Headers>>>,
}

/// More headers of an event, stored as JSON pairs.
type Headers = Vec<(String, String)>;

impl OutboxRows {
    /// Parameters [`bind`](Self::bind) adds.
    pub const PARAMETERS: usize = 10;

    /// `INSERT INTO mesh_outbox ... SELECT ... FROM unnest(...)` over parameters `$first` to
    /// `$first + 9`; the caller may append a `WHERE` (to insert only when its change happened).
    pub fn insert_sql(first: usize) -> String {
        let p = |n: usize| first + n;
        format!(
            "INSERT INTO mesh_outbox (event_id, subject, event_type, resource, payload, \
             correlation_id, traceparent, tracestate, occurred_at, extra_headers) \
             SELECT * FROM unnest(${}::uuid[], ${}::text[], ${}::text[], ${}::text[], \
             ${}::bytea[], ${}::text[], ${}::text[], ${}::text[], ${}::timestamptz[], \
             ${}::jsonb[])",
            p(0),
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6),
            p(7),
            p(8),
            p(9)
        )
    }

    /// Binds the arrays, in the order of [`insert_sql`](Self::insert_sql).
    pub fn bind<'q>(
        self,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        query
            .bind(self.ids)
            .bind(self.subjects)
            .bind(self.event_types)
            .bind(self.resources)
            .bind(self.payloads)
            .bind(self.correlation_ids)
            .bind(self.traceparents)
            .bind(self.tracestates)
            .bind(self.times)
            .bind(self.headers)
    }
}
