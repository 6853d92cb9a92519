//! The inbox: which events a consumer has already handled, so that a redelivered or replayed event
//! takes effect once. Claim the event id in the handler's own transaction.

use async_nats::jetstream::Message;
use sqlx::PgConnection;

use crate::dead_letters::EVENT_ID;
use crate::event::headers;

/// The event id of a message: `Taskmesh-Event-Id` (kept by replays), else `Nats-Msg-Id`.
pub fn event_id(message: &Message) -> Option<String> {
    let headers = message.headers.as_ref()?;
    headers
        .get(EVENT_ID)
        .or_else(|| headers.get(headers::MSG_ID))
        .map(|v| v.as_str().to_owned())
        .filter(|id| !id.is_empty())
}

/// Records that `consumer` handles `event_id` in the caller's transaction. `false` when it was
/// handled before: skip the effect and acknowledge. A concurrent claim waits for the first one.
pub async fn claim(
    conn: &mut PgConnection,
    consumer: &str,
    event_id: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO mesh_inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(event_id)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
