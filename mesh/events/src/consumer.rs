//! Durable JetStream pull consumers with explicit acknowledgement. A handler that fails asks for a
//! redelivery after a delay (NAK with delay); the consumer survives NATS outages by recreating its
//! subscription with backoff. Handlers must be idempotent: JetStream delivers at least once.
//!
//! (The inbox table, dead letters and replay tooling are a later step; see docs/events.md.)

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, Message, consumer};
use futures::StreamExt;
use tokio::sync::watch;

use crate::streams::StreamSpec;

/// What a handler wants done with a message it could not handle now.
#[derive(Debug)]
pub enum HandleError {
    /// Deliver it again after this delay (a gap before it, a dependency down).
    Retry(Duration, String),
}

/// Handles one message; must be idempotent.
pub trait Handler: Send + Sync + 'static {
    /// Applies `message`. `Ok` acknowledges it.
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>>;
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
}

/// Longest pause between attempts to (re)subscribe.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

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
                backoff = (backoff * 2).min(MAX_BACKOFF);
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
    let stream = js.get_stream(&spec.stream.name).await?;
    let consumer = stream
        .get_or_create_consumer(
            &spec.durable,
            consumer::pull::Config {
                durable_name: Some(spec.durable.clone()),
                filter_subject: spec.filter.clone(),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: spec.ack_wait,
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            },
        )
        .await?;
    let mut messages = consumer.messages().await?;
    tracing::info!(consumer = %spec.durable, "consuming");
    loop {
        tokio::select! {
            next = messages.next() => match next {
                Some(Ok(message)) => settle(handler, &message).await,
                Some(Err(err)) => return Err(err.into()),
                None => return Err("message stream ended".into()),
            },
            _ = stop.changed() => return Ok(()),
        }
    }
}

async fn settle<H: Handler>(handler: &H, message: &Message) {
    let outcome = handler.handle(message).await;
    let ack = match outcome {
        Ok(()) => message.ack().await,
        Err(HandleError::Retry(delay, reason)) => {
            tracing::debug!(subject = %message.subject, %reason, "redelivery requested");
            message.ack_with(AckKind::Nak(Some(delay))).await
        }
    };
    if let Err(err) = ack {
        // The message will be redelivered after ack_wait; the handler is idempotent.
        tracing::warn!(error = %err, "acknowledgement failed");
    }
}
