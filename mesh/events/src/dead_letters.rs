//! Dead letters: messages that kept failing, kept on the `DEAD_LETTERS` stream
//! (`taskmesh.deadletter.<consumer>`) with their original payload and headers plus why they died.
//! They can be listed, inspected and replayed onto their original subject.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, Message, message::PublishMessage};
use std::time::Duration;

use crate::event::headers;
use crate::streams::StreamSpec;

/// Header: why the message died.
pub const REASON: &str = "Taskmesh-Dead-Reason";
/// Header: the consumer it failed in.
pub const CONSUMER: &str = "Taskmesh-Dead-Consumer";
/// Header: how often it was delivered.
pub const DELIVERIES: &str = "Taskmesh-Dead-Deliveries";
/// Header: its original subject.
pub const ORIGINAL_SUBJECT: &str = "Taskmesh-Original-Subject";
/// Header: its original stream and sequence, `TASKS:42`.
pub const ORIGINAL_POSITION: &str = "Taskmesh-Original-Position";
/// Header kept on replayed messages: the original event id, for inbox de-duplication.
pub const EVENT_ID: &str = "Taskmesh-Event-Id";

const STREAM: &str = "DEAD_LETTERS";
const DEAD_HEADERS: [&str; 5] = [
    REASON,
    CONSUMER,
    DELIVERIES,
    ORIGINAL_SUBJECT,
    ORIGINAL_POSITION,
];

/// The dead-letter stream.
pub fn stream(replicas: usize) -> StreamSpec {
    StreamSpec {
        name: STREAM.to_owned(),
        subjects: vec!["taskmesh.deadletter.>".to_owned()],
        replicas,
        duplicate_window: Duration::from_secs(120),
    }
}

/// Copies `message` to the dead-letter stream with the failure; idempotent per original message.
pub async fn bury(
    js: &jetstream::Context,
    consumer: &str,
    message: &Message,
    reason: &str,
    deliveries: i64,
) -> Result<(), async_nats::Error> {
    let mut headers = message.headers.clone().unwrap_or_default();
    let (stream, sequence) = message
        .info()
        .map(|i| (i.stream.to_owned(), i.stream_sequence))
        .unwrap_or_default();
    let original_id = headers
        .get(headers::MSG_ID)
        .map(|v| v.as_str().to_owned())
        .unwrap_or_else(|| format!("{stream}:{sequence}"));
    if headers.get(EVENT_ID).is_none() {
        headers.insert(EVENT_ID, original_id.as_str());
    }
    headers.insert(REASON, one_line(reason).as_str());
    headers.insert(CONSUMER, consumer);
    headers.insert(DELIVERIES, deliveries.to_string().as_str());
    headers.insert(ORIGINAL_SUBJECT, message.subject.as_str());
    headers.insert(ORIGINAL_POSITION, format!("{stream}:{sequence}").as_str());
    headers.insert(
        headers::MSG_ID,
        format!("dead:{consumer}:{stream}:{sequence}").as_str(),
    );
    let publish = PublishMessage::build()
        .payload(message.payload.clone())
        .headers(headers);
    js.send_publish(format!("taskmesh.deadletter.{consumer}"), publish)
        .await?
        .await?;
    Ok(())
}

/// A dead letter to write through the outbox, in the transaction that decided the failure: the
/// message that started the failed work (`subject`, `event_type`, `event_id`, `payload`) and why.
#[allow(clippy::too_many_arguments)]
pub fn outgoing(
    consumer: &str,
    subject: &str,
    event_type: &str,
    event_id: &str,
    resource: &str,
    payload: Vec<u8>,
    reason: &str,
    deliveries: i64,
) -> crate::OutgoingEvent {
    let mut event = crate::OutgoingEvent::from_encoded(event_type, resource, payload);
    event.subject = format!("taskmesh.deadletter.{consumer}");
    event.headers = vec![
        (REASON.to_owned(), one_line(reason)),
        (CONSUMER.to_owned(), consumer.to_owned()),
        (DELIVERIES.to_owned(), deliveries.to_string()),
        (ORIGINAL_SUBJECT.to_owned(), subject.to_owned()),
        (EVENT_ID.to_owned(), event_id.to_owned()),
    ];
    event
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ").chars().take(512).collect()
}

/// One dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Sequence in `DEAD_LETTERS`; what [`replay`] takes.
    pub sequence: u64,
    /// The consumer it failed in.
    pub consumer: String,
    /// Its original subject.
    pub subject: String,
    /// Why it died.
    pub reason: String,
    /// How often it was delivered.
    pub deliveries: String,
    /// The original event id.
    pub event_id: String,
    /// The event type, when known.
    pub event_type: String,
    /// Payload size in bytes.
    pub size: usize,
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

/// Lists up to `limit` dead letters, oldest first.
pub async fn list(
    js: &jetstream::Context,
    limit: usize,
) -> Result<Vec<DeadLetter>, async_nats::Error> {
    let mut stream = js.get_stream(STREAM).await?;
    let state = stream.info().await?.state.clone();
    let mut letters = Vec::new();
    if state.messages == 0 {
        return Ok(letters);
    }
    for sequence in state.first_sequence..=state.last_sequence {
        if letters.len() >= limit {
            break;
        }
        // Replayed letters are deleted, leaving gaps.
        let Ok(raw) = stream.get_raw_message(sequence).await else {
            continue;
        };
        letters.push(DeadLetter {
            sequence,
            consumer: header(&raw.headers, CONSUMER),
            subject: header(&raw.headers, ORIGINAL_SUBJECT),
            reason: header(&raw.headers, REASON),
            deliveries: header(&raw.headers, DELIVERIES),
            event_id: header(&raw.headers, EVENT_ID),
            event_type: header(&raw.headers, headers::EVENT_TYPE),
            size: raw.payload.len(),
        });
    }
    Ok(letters)
}

/// Publishes dead letter `sequence` again on its original subject, with its original headers (the
/// original event id stays in `Taskmesh-Event-Id`), then deletes it from `DEAD_LETTERS`.
pub async fn replay(js: &jetstream::Context, sequence: u64) -> Result<String, async_nats::Error> {
    let stream = js.get_stream(STREAM).await?;
    let raw = stream.get_raw_message(sequence).await?;
    let subject = header(&raw.headers, ORIGINAL_SUBJECT);
    if subject.is_empty() {
        return Err(format!("dead letter {sequence} has no original subject").into());
    }
    let mut headers = HeaderMap::new();
    for (name, values) in raw.headers.iter() {
        let name: &str = name.as_ref();
        if DEAD_HEADERS.contains(&name) || name == headers::MSG_ID {
            continue;
        }
        for value in values {
            headers.append(name, value.as_str());
        }
    }
    let event_id = header(&raw.headers, EVENT_ID);
    headers.insert(
        headers::MSG_ID,
        format!("{event_id}:replay:{sequence}").as_str(),
    );
    js.send_publish(
        subject.clone(),
        PublishMessage::build()
            .payload(raw.payload)
            .headers(headers),
    )
    .await?
    .await?;
    stream.delete_message(sequence).await?;
    Ok(subject)
}
