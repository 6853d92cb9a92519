//! Durable JetStream pull consumers with explicit acknowledgement, retries with exponential backoff
//! and jitter (NAK with delay), and dead letters: a message that still fails after
//! `max_deliveries` attempts is copied, with its original headers and the failure reason, to the
//! `DEAD_LETTERS` stream and terminated, so it no longer holds up anything. Handlers must be
//! idempotent (JetStream delivers at least once); [`crate::inbox`] helps.
//!
//! Only failures of the message itself count towards dead letters. A failure of what the handler
//! depends on ([`HandleError::Transient`]: the database unreachable, a timeout) says nothing about
//! the message: the consumer keeps it, tells JetStream it is still working on it, and tries it
//! again in place with a capped backoff for as long as the outage lasts, pulling nothing else
//! meanwhile (every other message would fail the same way).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, Message, consumer};
use futures::{FutureExt, StreamExt};
use rand::Rng;
use tokio::sync::watch;

pub use taskmesh_mesh::db::is_transient;

use crate::dead_letters;
use crate::streams::StreamSpec;

/// What a handler wants done with a message it could not handle now.
#[derive(Debug)]
pub enum HandleError {
    /// The message cannot be applied (undecodable, refused by domain rules, an unexpected error):
    /// retry after the consumer's backoff; after the last attempt, dead-letter it.
    Retry(String),
    /// Something the handler depends on is unavailable (database down, pool exhausted, timeout):
    /// retried in place with a capped backoff until it works or the consumer stops. Never
    /// dead-lettered.
    Transient(String),
    /// Not a failure, only too early (an earlier event is missing): redeliver after this delay.
    /// Never dead-lettered.
    Wait(Duration, String),
}

impl HandleError {
    /// Classifies a failure by its cause chain: [`Transient`](Self::Transient) when a
    /// [`sqlx::Error`] in it says the database could not be reached or asked to try again
    /// ([`is_transient`]), [`Retry`](Self::Retry) otherwise. The text is the whole chain.
    pub fn classify(error: &(dyn std::error::Error + 'static)) -> Self {
        let text = taskmesh_mesh::status::error_chain(error);
        let mut cause = Some(error);
        while let Some(current) = cause {
            if let Some(sql) = current.downcast_ref::<sqlx::Error>()
                && is_transient(sql)
            {
                return Self::Transient(text);
            }
            cause = current.source();
        }
        Self::Retry(text)
    }
}

/// Any error, classified by its cause chain ([`HandleError::classify`]), so handlers use `?`.
impl<E: std::error::Error + 'static> From<E> for HandleError {
    fn from(error: E) -> Self {
        Self::classify(&error)
    }
}

/// What handling a message (or a batch) comes to.
pub type Handling<'a> = Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>>;

/// Handles one message; must be idempotent.
pub trait Handler: Send + Sync + 'static {
    /// Applies `message`. `Ok` acknowledges it.
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>>;

    /// Applies several messages that arrived together, in order, as one unit (one transaction):
    /// `Ok` acknowledges them all; on `Err` nothing of them may have taken effect, and each is
    /// handled again on its own with [`handle`](Self::handle) and settled as usual. `None` (the
    /// default): this handler takes one message at a time.
    fn handle_batch<'a>(&'a self, messages: &'a [Message]) -> Option<Handling<'a>> {
        let _ = messages;
        None
    }
}

/// Exponential backoff with jitter between attempts.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Delay before the second attempt.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Each delay is the previous one times this.
    pub multiplier: f64,
    /// Random spread, as a fraction of the delay (0.2: ±20 %).
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay after the `attempt`-th failed delivery (1-based), without jitter.
    pub fn base_delay(&self, attempt: i64) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let secs = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        Duration::from_secs_f64(secs.min(self.max.as_secs_f64()))
    }

    /// The delay with jitter applied.
    pub fn delay(&self, attempt: i64) -> Duration {
        let base = self.base_delay(attempt).as_secs_f64();
        let spread = base * self.jitter.clamp(0.0, 1.0);
        let jittered = base + rand::rng().random_range(-spread..=spread);
        Duration::from_secs_f64(jittered.max(0.0))
    }
}

/// A durable consumer on one stream.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The stream (created if missing).
    pub stream: StreamSpec,
    /// Durable consumer name; replicas with the same name share the work.
    pub durable: String,
    /// Subject filter, `taskmesh.tasks.v1.>`.
    pub filter: String,
    /// How long JetStream waits for an acknowledgement before redelivering.
    pub ack_wait: Duration,
    /// Attempts before a failing message is dead-lettered.
    pub max_deliveries: i64,
    /// Delays between attempts.
    pub backoff: Backoff,
    /// Longest delay between in-place attempts after a [`HandleError::Transient`] failure, so
    /// consumption resumes within this long after an outage ends. Kept below `ack_wait`.
    pub transient_max: Duration,
    /// Where consumer lag (messages not yet acknowledged) is reported.
    pub lag: Option<prometheus::IntGauge>,
    /// Where the age of each handled event (its `Taskmesh-Time`, set when the change committed,
    /// to the end of its handling) is recorded.
    pub age: Option<prometheus::Histogram>,
    /// Where the time the handler took for each pulled batch (or single message) is recorded.
    pub handling: Option<prometheus::Histogram>,
}

impl ConsumerSpec {
    /// A consumer with 5 attempts, the default backoff, an ack wait of [`ACK_WAIT`] and no lag
    /// gauge.
    pub fn new(stream: StreamSpec, durable: &str, filter: &str) -> Self {
        Self {
            stream,
            durable: durable.to_owned(),
            filter: filter.to_owned(),
            ack_wait: ACK_WAIT,
            max_deliveries: 5,
            backoff: Backoff::default(),
            transient_max: Duration::from_secs(2),
            lag: None,
            age: None,
            handling: None,
        }
    }
}

/// Registers `taskmesh_consumer_pending{consumer}` (messages not yet acknowledged, per durable
/// consumer) with a service's metrics; give each consumer its labelled gauge as `lag`.
pub fn lag_gauges(metrics: &taskmesh_mesh::Metrics) -> prometheus::IntGaugeVec {
    let gauges = prometheus::IntGaugeVec::new(
        prometheus::Opts::new(
            "consumer_pending",
            "messages not yet acknowledged, per durable consumer",
        ),
        &["consumer"],
    )
    .expect("valid metric definition");
    metrics.register(Box::new(gauges.clone()));
    gauges
}

/// Registers `taskmesh_consumer_event_age_seconds{consumer}`: from an event's change (its
/// `Taskmesh-Time`) to the end of its handling by the consumer, per durable consumer; give each
/// consumer its labelled histogram as `age`. Fine buckets below 100 ms: the event lag the platform
/// promises is measured with it.
pub fn age_histograms(metrics: &taskmesh_mesh::Metrics) -> prometheus::HistogramVec {
    per_consumer_histograms(
        metrics,
        "consumer_event_age_seconds",
        "from an event's change to the end of its handling, per durable consumer",
        vec![
            0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25,
            0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ],
    )
}

/// Registers `taskmesh_consumer_handling_seconds{consumer}`: how long the handler took for each
/// pulled batch of messages (or a single one), per durable consumer; give each consumer its
/// labelled histogram as `handling`. Set beside the event age it tells a slow handler from a
/// queue in front of it.
pub fn handling_histograms(metrics: &taskmesh_mesh::Metrics) -> prometheus::HistogramVec {
    per_consumer_histograms(
        metrics,
        "consumer_handling_seconds",
        "time a handler took for one pulled batch or message, per durable consumer",
        vec![
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ],
    )
}

/// Registers histograms `name` labelled by `consumer` with `metrics`.
fn per_consumer_histograms(
    metrics: &taskmesh_mesh::Metrics,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
) -> prometheus::HistogramVec {
    let histograms = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new(name, help).buckets(buckets),
        &["consumer"],
    )
    .expect("valid metric definition");
    metrics.register(Box::new(histograms.clone()));
    histograms
}

/// The age of `message`'s event now, from its `Taskmesh-Time` header.
fn event_age(message: &Message) -> Option<Duration> {
    let time = message.headers.as_ref()?.get(crate::headers::TIME)?;
    let time = chrono::DateTime::parse_from_rfc3339(time.as_str()).ok()?;
    (chrono::Utc::now() - time.with_timezone(&chrono::Utc))
        .to_std()
        .ok()
}

/// How long JetStream waits for an acknowledgement before handing a message out again. Handlers
/// are short transactions and a message waiting out an outage is kept alive with progress acks,
/// so this is mostly how long the messages a killed replica had in hand wait: a restarted
/// service's read model catches up within it.
pub const ACK_WAIT: Duration = Duration::from_secs(3);

/// Messages pulled at a time.
const PULL_BATCH: usize = 25;

/// Longest pause between attempts to (re)subscribe.
const MAX_RESUBSCRIBE: Duration = Duration::from_secs(5);
/// How often consumer lag is read.
const LAG_INTERVAL: Duration = Duration::from_secs(5);

/// Consumes until `stop` turns true.
pub async fn run<H: Handler>(
    client: async_nats::Client,
    spec: ConsumerSpec,
    handler: Arc<H>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if *stop.borrow() {
            return;
        }
        match consume(&client, &spec, handler.as_ref(), &mut stop).await {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(consumer = %spec.durable, error = %err, retry_in_ms = backoff.as_millis() as u64, "consumer interrupted");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_RESUBSCRIBE);
            }
        }
    }
}

async fn consume<H: Handler>(
    client: &async_nats::Client,
    spec: &ConsumerSpec,
    handler: &H,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), async_nats::Error> {
    let js = jetstream::new(client.clone());
    spec.stream.ensure(&js).await?;
    dead_letters::stream(spec.stream.replicas)
        .ensure(&js)
        .await?;
    let stream = js.get_stream(&spec.stream.name).await?;
    let config = consumer::pull::Config {
        durable_name: Some(spec.durable.clone()),
        filter_subject: spec.filter.clone(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: spec.ack_wait,
        deliver_policy: consumer::DeliverPolicy::All,
        ..Default::default()
    };
    let mut consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(&spec.durable, config.clone())
        .await?;
    // A durable consumer created by an earlier version is brought up to date, keeping its place.
    let current = consumer.cached_info().config.clone();
    if current.filter_subject != config.filter_subject || current.ack_wait != config.ack_wait {
        tracing::info!(consumer = %spec.durable, from = %current.filter_subject, to = %config.filter_subject, "updating the consumer's settings");
        consumer = stream.update_consumer(config).await?;
    }
    // Small batches: what waits in the client's buffer is still within its ack wait when its
    // turn comes.
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH)
        .messages()
        .await?;
    let mut lag_timer = tokio::time::interval(LAG_INTERVAL);
    tracing::info!(consumer = %spec.durable, "consuming");
    loop {
        tokio::select! {
            next = messages.next() => match next {
                Some(Ok(message)) => {
                    // What else is already here goes with it, for a handler that takes batches.
                    let mut batch = vec![message];
                    while batch.len() < PULL_BATCH {
                        match messages.next().now_or_never() {
                            Some(Some(Ok(message))) => batch.push(message),
                            Some(Some(Err(err))) => return Err(err.into()),
                            Some(None) | None => break,
                        }
                    }
                    let started = Instant::now();
                    if batch.len() > 1
                        && let Some(applied) = handler.handle_batch(&batch)
                        && applied.await.is_ok()
                    {
                        let took = started.elapsed();
                        if let Some(histogram) = &spec.handling {
                            histogram.observe(took.as_secs_f64());
                        }
                        // (Fields are computed only when debug events are on.)
                        tracing::debug!(consumer = %spec.durable, size = batch.len(), received_age_ms = event_age(&batch[0]).map(|age| age.saturating_sub(took).as_millis() as u64), took_ms = took.as_secs_f64() * 1000.0, "handled a batch");
                        for message in &batch {
                            acknowledge(spec, message).await;
                        }
                        continue;
                    }
                    for message in &batch {
                        let started = Instant::now();
                        if !settle(&js, spec, handler, message, stop).await {
                            return Ok(());
                        }
                        if let Some(histogram) = &spec.handling {
                            histogram.observe(started.elapsed().as_secs_f64());
                        }
                    }
                }
                Some(Err(err)) => return Err(err.into()),
                None => return Err("message stream ended".into()),
            },
            _ = lag_timer.tick() => {
                if let Some(gauge) = &spec.lag
                    && let Ok(info) = consumer.info().await
                {
                    let pending = info.num_pending + info.num_ack_pending as u64;
                    gauge.set(i64::try_from(pending).unwrap_or(i64::MAX));
                }
            }
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// Acknowledges a handled `message` and records its event's age.
async fn acknowledge(spec: &ConsumerSpec, message: &Message) {
    if let Some((age, histogram)) = event_age(message).zip(spec.age.as_ref()) {
        histogram.observe(age.as_secs_f64());
    }
    if let Err(err) = message.ack().await {
        tracing::warn!(consumer = %spec.durable, error = %err, "acknowledgement failed; the message will come again");
    }
}

/// Handles `message` and settles it with JetStream; false when the consumer was stopped while
/// the message waited out an outage (it is handed back for redelivery).
async fn settle<H: Handler>(
    js: &jetstream::Context,
    spec: &ConsumerSpec,
    handler: &H,
    message: &Message,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let delivered = message.info().map_or(1, |info| info.delivered);
    let mut outage_attempts = 0_i64;
    let outcome = loop {
        match handler.handle(message).await {
            Err(HandleError::Transient(reason)) => {
                outage_attempts += 1;
                let delay = spec
                    .backoff
                    .delay(outage_attempts)
                    .min(spec.transient_max)
                    .min(spec.ack_wait / 2);
                tracing::warn!(consumer = %spec.durable, subject = %message.subject, attempt = outage_attempts, retry_in_ms = delay.as_millis() as u64, %reason, "dependency unavailable; retrying in place");
                // Still ours: the ack deadline starts again, so JetStream does not hand it to
                // another replica meanwhile.
                if let Err(err) = message.ack_with(AckKind::Progress).await {
                    tracing::debug!(error = %err, "cannot extend the ack deadline");
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => {
                        let _ = message.ack_with(AckKind::Nak(None)).await;
                        return false;
                    }
                }
            }
            other => {
                if outage_attempts > 0 {
                    tracing::info!(consumer = %spec.durable, attempts = outage_attempts + 1, "dependency back; consuming again");
                }
                break other;
            }
        }
    };
    let ack = match outcome {
        Ok(()) => {
            acknowledge(spec, message).await;
            return true;
        }
        Err(HandleError::Wait(delay, reason)) => {
            tracing::debug!(subject = %message.subject, %reason, "too early; redelivery requested");
            message.ack_with(AckKind::Nak(Some(delay))).await
        }
        Err(HandleError::Retry(reason)) if delivered >= spec.max_deliveries => {
            match dead_letters::bury(js, &spec.durable, message, &reason, delivered).await {
                Ok(()) => {
                    tracing::error!(consumer = %spec.durable, subject = %message.subject, deliveries = delivered, %reason, "dead-lettered");
                    message.ack_with(AckKind::Term).await
                }
                Err(err) => {
                    // Keep the message: it is retried rather than lost.
                    tracing::error!(error = %err, "cannot dead-letter; retrying instead");
                    message.ack_with(AckKind::Nak(Some(spec.backoff.max))).await
                }
            }
        }
        // (A transient failure never gets here: it was retried in place above.)
        Err(HandleError::Retry(reason) | HandleError::Transient(reason)) => {
            let delay = spec.backoff.delay(delivered);
            tracing::warn!(consumer = %spec.durable, subject = %message.subject, attempt = delivered, retry_in_ms = delay.as_millis() as u64, %reason, "handler failed");
            message.ack_with(AckKind::Nak(Some(delay))).await
        }
    };
    if let Err(err) = ack {
        // The message will be redelivered after ack_wait; the handler is idempotent.
        tracing::warn!(error = %err, "acknowledgement failed");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.0,
        };
        assert_eq!(backoff.base_delay(1), Duration::from_millis(100));
        assert_eq!(backoff.base_delay(2), Duration::from_millis(200));
        assert_eq!(backoff.base_delay(4), Duration::from_millis(800));
        assert_eq!(backoff.base_delay(10), Duration::from_secs(1));
        assert_eq!(backoff.delay(3), Duration::from_millis(400));
    }

    #[test]
    fn jitter_stays_within_its_spread() {
        let backoff = Backoff {
            jitter: 0.2,
            ..Backoff::default()
        };
        for _ in 0..100 {
            let delay = backoff.delay(3).as_secs_f64();
            let base = backoff.base_delay(3).as_secs_f64();
            assert!(
                delay >= base * 0.8 - 1e-9 && delay <= base * 1.2 + 1e-9,
                "{delay}"
            );
        }
    }
}
