//! Events on NATS JetStream, published through a transactional outbox.
//!
//! A service writes its state change and the event describing it in one PostgreSQL transaction
//! ([`Outbox::enqueue`]); the [`OutboxRelay`] publishes committed events to JetStream with
//! `Nats-Msg-Id` set to the event id (so JetStream drops a republished duplicate), retries while NATS
//! is away, and marks each row sent. Nothing committed is lost; nothing is published that was not
//! committed.

pub mod consumer;
pub mod dead_letters;
pub mod event;
pub mod inbox;
pub mod nats;
pub mod outbox;
pub mod relay;
pub mod startup;
pub mod streams;

/// The outbox and inbox tables (`migrations/` of this crate). The service kit applies them together
/// with each service's own migrations, so they change through migrations like any other table.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub use event::{OutgoingEvent, caused_context, decode_as, header, headers, subject_of};
pub use outbox::{EnqueueError, MAX_EVENT_BYTES, Outbox, OutboxRows};
pub use relay::{OutboxRelay, RelayMetrics};
pub use streams::StreamSpec;
