//! The relay: publishes committed outbox rows to JetStream in order, with `Nats-Msg-Id` = event id,
//! waits for each acknowledgement, and marks the rows sent. While NATS is away it retries with
//! backoff; rows stay pending, so nothing is lost. Several replicas share the work through
//! `FOR UPDATE SKIP LOCKED`.

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
        };
        metrics.register(Box::new(this.published.clone()));
        metrics.register(Box::new(this.failures.clone()));
        metrics.register(Box::new(this.pending.clone()));
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

    /// Publishes up to one batch of pending rows; returns how many were published.
    pub async fn publish_batch(&self) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, event_id, subject, event_type, resource, payload, correlation_id, \
             traceparent, tracestate, occurred_at, extra_headers FROM mesh_outbox \
             WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            self.metrics.pending.set(0);
            return Ok(0);
        }

        // Send the whole batch, then collect acknowledgements in order; the first failure stops
        // the round and everything from it on stays pending.
        let mut acks = Vec::with_capacity(rows.len());
        let mut failure = None;
        for row in &rows {
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
                    failure = Some(publish_error(row, &err.to_string()));
                    break;
                }
            }
        }
        let mut published = Vec::with_capacity(acks.len());
        for (row, ack) in acks {
            if failure.is_some() {
                break;
            }
            match tokio::time::timeout(ACK_TIMEOUT, ack.into_future()).await {
                Ok(Ok(_)) => published.push(row.seq),
                Ok(Err(err)) => failure = Some(publish_error(row, &err.to_string())),
                Err(_) => failure = Some(publish_error(row, "acknowledgement timed out")),
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
        if let Some(RelayError::Publish {
            event_id, reason, ..
        }) = &failure
        {
            sqlx::query(
                "UPDATE mesh_outbox SET attempts = attempts + 1, last_error = $2 WHERE event_id = $1",
            )
            .bind(event_id)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.metrics.published.inc_by(published.len() as u64);
        self.metrics
            .pending
            .set((rows.len() - published.len()) as i64);
        match failure {
            Some(err) => Err(err),
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
