//! The relay: publishes committed outbox rows to JetStream in order, with `Nats-Msg-Id` = event id,
//! waits for each acknowledgement, and marks the rows sent. While NATS is away it retries with
//! backoff; rows stay pending, so nothing is lost. Several replicas share the work through
//! `FOR UPDATE SKIP LOCKED`.
//!
//! One bad row does not stop the others: when a row fails, the later rows of the same resource wait
//! behind it (their order holds), the rows of other resources go on. A failure counts against the
//! row only in a round where other rows were published (so a NATS outage counts against nobody);
//! after [`SET_ASIDE_AFTER`] such failures the row is set aside (`set_aside_at`), logged and counted
//! in `outbox_set_aside_total`, and no longer holds up its resource.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use chrono::{DateTime, SecondsFormat, Utc};
use prometheus::{IntCounter, IntGauge};
use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::event::headers;
use crate::streams::StreamSpec;

/// Rows published per transaction.
const BATCH: i64 = 100;
/// Failures of one row (in rounds where others were published) before it is set aside.
pub const SET_ASIDE_AFTER: i32 = 5;
/// How long to wait for a JetStream acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Poll interval when nobody wakes the relay (events written by another replica).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Longest pause between retries while NATS is away.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long the final flush at shutdown may take.
const FINAL_FLUSH: Duration = Duration::from_secs(3);

/// Counters the relay exports.
#[derive(Clone, Debug)]
pub struct RelayMetrics {
    /// Events acknowledged by JetStream.
    pub published: IntCounter,
    /// Failed publish attempts.
    pub failures: IntCounter,
    /// Rows waiting at the last look.
    pub pending: IntGauge,
    /// Rows set aside after failing again and again.
    pub set_aside: IntCounter,
}

impl RelayMetrics {
    /// Creates the counters and registers them in `registry`.
    pub fn register(metrics: &taskmesh_mesh::Metrics) -> Self {
        let this = Self {
            published: IntCounter::new(
                "outbox_published_total",
                "events published from the outbox",
            )
            .expect("valid metric definition"),
            failures: IntCounter::new(
                "outbox_publish_failures_total",
                "failed outbox publish attempts",
            )
            .expect("valid metric definition"),
            pending: IntGauge::new("outbox_pending", "outbox rows not yet published")
                .expect("valid metric definition"),
            set_aside: IntCounter::new(
                "outbox_set_aside_total",
                "outbox rows set aside after repeated publish failures",
            )
            .expect("valid metric definition"),
        };
        metrics.register(Box::new(this.published.clone()));
        metrics.register(Box::new(this.failures.clone()));
        metrics.register(Box::new(this.pending.clone()));
        metrics.register(Box::new(this.set_aside.clone()));
        this
    }
}

/// Why one relay round failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Reading or marking rows failed.
    #[error("outbox database error: {0}")]
    Database(#[from] sqlx::Error),
    /// JetStream did not take an event.
    #[error("publishing {event_id} to {subject} failed: {reason}")]
    Publish {
        /// Event id.
        event_id: Uuid,
        /// NATS subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// The streams could not be created.
    #[error("cannot create streams: {0}")]
    Streams(String),
}

/// Publishes outbox rows; run it with [`OutboxRelay::run`].
pub struct OutboxRelay {
    pool: PgPool,
    jetstream: jetstream::Context,
    source: String,
    streams: Vec<StreamSpec>,
    wake: Arc<Notify>,
    metrics: RelayMetrics,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    attempts: i32,
    event_id: Uuid,
    subject: String,
    event_type: String,
    resource: String,
    payload: Vec<u8>,
    correlation_id: String,
    traceparent: Option<String>,
    tracestate: Option<String>,
    occurred_at: DateTime<Utc>,
    extra_headers: Option<sqlx::types::Json<Vec<(String, String)>>>,
}

impl OutboxRelay {
    /// A relay for `source` (the service name) that ensures `streams` before publishing.
    pub fn new(
        pool: PgPool,
        client: async_nats::Client,
        source: &str,
        streams: Vec<StreamSpec>,
        wake: Arc<Notify>,
        metrics: RelayMetrics,
    ) -> Self {
        Self {
            pool,
            jetstream: jetstream::new(client),
            source: source.to_owned(),
            streams,
            wake,
            metrics,
        }
    }

    /// Publishes until `stop` turns true, then makes one last bounded attempt to flush.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut streams_ready = false;
        let mut backoff = Duration::from_millis(100);
        loop {
            if *stop.borrow() {
                break;
            }
            let round = async {
                if !streams_ready {
                    self.ensure_streams().await?;
                    streams_ready = true;
                }
                self.publish_batch().await
            };
            match round.await {
                Ok(count) => {
                    backoff = Duration::from_millis(100);
                    if count as i64 == BATCH {
                        continue;
                    }
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(IDLE_POLL) => {}
                        _ = stop.changed() => {}
                    }
                }
                Err(err) => {
                    self.metrics.failures.inc();
                    tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64, "outbox relay round failed");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        if streams_ready {
            match tokio::time::timeout(FINAL_FLUSH, self.publish_batch()).await {
                Ok(Ok(count)) => tracing::info!(count, "outbox flushed at shutdown"),
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "final outbox flush failed; rows stay pending")
                }
                Err(_) => tracing::warn!("final outbox flush timed out; rows stay pending"),
            }
        }
    }

    async fn ensure_streams(&self) -> Result<(), RelayError> {
        for spec in &self.streams {
            tokio::time::timeout(ACK_TIMEOUT, spec.ensure(&self.jetstream))
                .await
                .map_err(|_| RelayError::Streams(format!("{}: timed out", spec.name)))?
                .map_err(|e| RelayError::Streams(format!("{}: {e}", spec.name)))?;
        }
        Ok(())
    }

    /// Publishes up to one batch of pending rows; returns how many were published. An error only
    /// when rows failed and none was published (NATS away: the caller backs off).
    pub async fn publish_batch(&self) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, attempts, event_id, subject, event_type, resource, payload, correlation_id, \
             traceparent, tracestate, occurred_at, extra_headers FROM mesh_outbox \
             WHERE published_at IS NULL AND set_aside_at IS NULL \
             ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            self.metrics.pending.set(0);
            return Ok(0);
        }

        // Send the batch, then collect acknowledgements in order. A failed row holds back the
        // later rows of its resource; the other resources go on.
        let mut held: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut failures: Vec<(&Row, RelayError)> = Vec::new();
        let mut acks = Vec::with_capacity(rows.len());
        for row in &rows {
            if held.contains(row.resource.as_str()) {
                continue;
            }
            let publish = PublishMessage::build()
                .payload(row.payload.clone().into())
                .headers(self.headers_for(row));
            match self
                .jetstream
                .send_publish(row.subject.clone(), publish)
                .await
            {
                Ok(ack) => acks.push((row, ack)),
                Err(err) => {
                    held.insert(row.resource.as_str());
                    failures.push((row, publish_error(row, &err.to_string())));
                }
            }
        }
        let mut published = Vec::with_capacity(acks.len());
        for (row, ack) in acks {
            if held.contains(row.resource.as_str()) {
                continue;
            }
            let outcome = match tokio::time::timeout(ACK_TIMEOUT, ack.into_future()).await {
                Ok(Ok(_)) => None,
                Ok(Err(err)) => Some(publish_error(row, &err.to_string())),
                Err(_) => Some(publish_error(row, "acknowledgement timed out")),
            };
            match outcome {
                None => published.push(row.seq),
                Some(err) => {
                    held.insert(row.resource.as_str());
                    failures.push((row, err));
                }
            }
        }

        if !published.is_empty() {
            sqlx::query(
                "UPDATE mesh_outbox SET published_at = now(), attempts = attempts + 1, \
                 last_error = NULL WHERE seq = ANY($1)",
            )
            .bind(&published)
            .execute(&mut *tx)
            .await?;
        }
        // A failure while others went through is the row's own: it counts, and enough of them
        // set the row aside. Without any success (NATS away) nothing counts.
        let row_specific = !published.is_empty();
        for (row, err) in &failures {
            let RelayError::Publish { reason, .. } = err else {
                continue;
            };
            let attempts = row.attempts + i32::from(row_specific);
            let set_aside = row_specific && attempts >= SET_ASIDE_AFTER;
            sqlx::query(
                "UPDATE mesh_outbox SET attempts = $2, last_error = $3, \
                 set_aside_at = CASE WHEN $4 THEN now() ELSE set_aside_at END WHERE seq = $1",
            )
            .bind(row.seq)
            .bind(attempts)
            .bind(reason)
            .bind(set_aside)
            .execute(&mut *tx)
            .await?;
            if set_aside {
                self.metrics.set_aside.inc();
                tracing::error!(
                    seq = row.seq,
                    event_id = %row.event_id,
                    subject = %row.subject,
                    attempts,
                    error = %reason,
                    "outbox row set aside after repeated publish failures; the rows behind it go on"
                );
            }
        }
        tx.commit().await?;
        self.metrics.published.inc_by(published.len() as u64);
        self.metrics
            .pending
            .set((rows.len() - published.len()) as i64);
        match failures.into_iter().next() {
            Some((_, err)) if published.is_empty() => Err(err),
            Some((_, err)) => {
                self.metrics.failures.inc();
                tracing::warn!(error = %err, "an outbox row failed; the others were published");
                Ok(published.len())
            }
            None => Ok(published.len()),
        }
    }

    fn headers_for(&self, row: &Row) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(headers::MSG_ID, row.event_id.to_string().as_str());
        map.insert(headers::EVENT_TYPE, row.event_type.as_str());
        map.insert(headers::SOURCE, self.source.as_str());
        map.insert(
            headers::TIME,
            row.occurred_at
                .to_rfc3339_opts(SecondsFormat::Micros, true)
                .as_str(),
        );
        map.insert(headers::SUBJECT, row.resource.as_str());
        if !row.correlation_id.is_empty() {
            map.insert(headers::CORRELATION_ID, row.correlation_id.as_str());
        }
        if let Some(traceparent) = &row.traceparent {
            map.insert(headers::TRACEPARENT, traceparent.as_str());
        }
        if let Some(tracestate) = &row.tracestate {
            map.insert(headers::TRACESTATE, tracestate.as_str());
        }
        if let Some(extra) = &row.extra_headers {
            for (name, value) in extra.iter() {
                map.insert(name.as_str(), value.as_str());
            }
        }
        map
    }
}

fn publish_error(row: &Row, reason: &str) -> RelayError {
    RelayError::Publish {
        event_id: row.event_id,
        subject: row.subject.clone(),
        reason: reason.to_owned(),
    }
}
