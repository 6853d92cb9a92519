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

/// Records that `consumer` handles each of `event_ids` in the caller's transaction, in one
/// statement; the ids not handled before. Ids are claimed in sorted order, so concurrent claims of
/// overlapping sets wait for each other instead of deadlocking.
pub async fn claim_all(
    conn: &mut PgConnection,
    consumer: &str,
    event_ids: &[String],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let mut sorted: Vec<&str> = event_ids.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let fresh: Vec<String> = sqlx::query_scalar(
        "INSERT INTO mesh_inbox (consumer, event_id) \
         SELECT $1, id FROM unnest($2::text[]) WITH ORDINALITY AS t(id, n) ORDER BY n \
         ON CONFLICT DO NOTHING RETURNING event_id",
    )
    .bind(consumer)
    .bind(&sorted)
    .fetch_all(conn)
    .await?;
    Ok(fresh.into_iter().collect())
}
