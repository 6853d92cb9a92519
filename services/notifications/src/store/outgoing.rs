//! The queues of what is still to go out: emails and webhook deliveries. A loop claims due rows by
//! moving their next attempt past a lease (`FOR UPDATE SKIP LOCKED`, so replicas never take the
//! same row), sends them without holding a transaction, then settles them. A process that dies
//! between sending and settling leaves the row to be sent again when the lease ends, with the same
//! Message-ID or webhook-id: at most the in-flight delivery is repeated.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgConnection;

use super::Store;
use super::inbox::{self, Made, Making};
use super::webhooks::LoggedAttempt;
use crate::domain::rules;
use crate::error::Error;

/// An email to send now.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueEmail {
    /// The notification (the row's key).
    pub notification_id: String,
    /// To.
    pub to_address: String,
    /// Subject.
    pub subject: String,
    /// text/plain.
    pub text_body: String,
    /// text/html.
    pub html_body: String,
    /// `Message-ID`.
    pub message_id: String,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// Recipient's user id.
    pub user_id: String,
}

/// A webhook delivery to attempt now, with its endpoint.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueDelivery {
    /// Project id.
    pub project_id: String,
    /// Webhook id.
    pub webhook_id: String,
    /// Delivery id.
    pub delivery_id: String,
    /// `webhook-id`.
    pub message_id: String,
    /// Body.
    pub payload: String,
    /// Attempts so far, this one included.
    pub attempt_count: i32,
    /// Endpoint.
    pub url: String,
    /// Sealed secret.
    pub secret: String,
    /// Whether the webhook still delivers.
    pub active: bool,
}

impl DueDelivery {
    /// `projects/{project}/webhooks/{webhook}`: what the secret is sealed for.
    pub fn webhook_name(&self) -> String {
        format!("projects/{}/webhooks/{}", self.project_id, self.webhook_id)
    }
}

/// How a delivery attempt ended.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    /// The attempt as logged.
    pub attempt: LoggedAttempt,
    /// 2xx.
    pub succeeded: bool,
    /// When to try again; `None` to give up.
    pub retry_at: Option<DateTime<Utc>>,
    /// Failures in a row after which the webhook is turned off.
    pub disable_after: i32,
}

fn lease_end(lease: std::time::Duration) -> DateTime<Utc> {
    Utc::now() + TimeDelta::from_std(lease).unwrap_or(TimeDelta::minutes(1))
}

impl Store {
    /// Claims up to `batch` due emails for `lease`.
    pub async fn claim_emails(
        &self,
        batch: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<DueEmail>, Error> {
        Ok(sqlx::query_as(
            "UPDATE emails SET next_attempt_time = $2, attempts = attempts + 1 \
             WHERE notification_id IN (SELECT notification_id FROM emails \
               WHERE state = 1 AND next_attempt_time <= now() ORDER BY next_attempt_time \
               LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING notification_id, to_address, subject, text_body, html_body, message_id, \
               attempts, user_id",
        )
        .bind(i64::from(batch))
        .bind(lease_end(lease))
        .fetch_all(self.pool())
        .await?)
    }

    /// Settles an email: sent, to be retried at `retry_at`, or given up (`None`).
    pub async fn settle_email(
        &self,
        id: &str,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), Error> {
        match error {
            None => sqlx::query(
                "UPDATE emails SET state = 2, sent_time = now(), last_error = '' WHERE notification_id = $1",
            )
            .bind(id)
            .execute(self.pool())
            .await?,
            Some(error) => sqlx::query(
                "UPDATE emails SET state = CASE WHEN $3::timestamptz IS NULL THEN 3 ELSE 1 END, \
                   next_attempt_time = coalesce($3, next_attempt_time), last_error = $2 \
                 WHERE notification_id = $1",
            )
            .bind(id)
            .bind(error)
            .bind(retry_at)
            .execute(self.pool())
            .await?,
        };
        Ok(())
    }

    /// When the next pending email is due.
    pub async fn next_email_time(&self) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(
            sqlx::query_scalar("SELECT min(next_attempt_time) FROM emails WHERE state = 1")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Claims up to `batch` due webhook deliveries for `lease`.
    pub async fn claim_deliveries(
        &self,
        batch: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<DueDelivery>, Error> {
        Ok(sqlx::query_as(
            "WITH due AS (SELECT project_id, webhook_id, delivery_id FROM deliveries \
               WHERE state = 1 AND next_attempt_time <= now() ORDER BY next_attempt_time \
               LIMIT $1 FOR UPDATE SKIP LOCKED), \
             claimed AS (UPDATE deliveries d SET next_attempt_time = $2, \
               attempt_count = d.attempt_count + 1 FROM due \
               WHERE (d.project_id, d.webhook_id, d.delivery_id) = \
                     (due.project_id, due.webhook_id, due.delivery_id) \
               RETURNING d.project_id, d.webhook_id, d.delivery_id, d.message_id, d.payload, \
                 d.attempt_count) \
             SELECT c.*, w.url, w.secret, w.active FROM claimed c \
             JOIN webhooks w USING (project_id, webhook_id)",
        )
        .bind(i64::from(batch))
        .bind(lease_end(lease))
        .fetch_all(self.pool())
        .await?)
    }

    /// When the next pending delivery is due.
    pub async fn next_delivery_time(&self) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(
            sqlx::query_scalar("SELECT min(next_attempt_time) FROM deliveries WHERE state = 1")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Logs an attempt and settles the delivery; counts the webhook's failures in a row and turns
    /// it off (telling its creator) when they reach the limit. Returns what the notification of
    /// that made, for the caller to wake the loops.
    pub async fn settle_delivery(
        &self,
        due: &DueDelivery,
        outcome: &AttemptOutcome,
        making: &Making,
    ) -> Result<Made, Error> {
        let mut tx = self.pool().begin().await?;
        let state = if outcome.succeeded {
            2
        } else if outcome.retry_at.is_some() {
            1
        } else {
            3
        };
        let attempt = serde_json::to_value(&outcome.attempt).unwrap_or_default();
        sqlx::query(
            "UPDATE deliveries SET state = $4, attempts = attempts || jsonb_build_array($5::jsonb), \
               next_attempt_time = coalesce($6, next_attempt_time) \
             WHERE project_id = $1 AND webhook_id = $2 AND delivery_id = $3",
        )
        .bind(&due.project_id)
        .bind(&due.webhook_id)
        .bind(&due.delivery_id)
        .bind(state)
        .bind(attempt)
        .bind(outcome.retry_at)
        .execute(&mut *tx)
        .await?;
        let mut made = Made::default();
        if outcome.succeeded {
            sqlx::query(
                "UPDATE webhooks SET consecutive_failures = 0 \
                 WHERE project_id = $1 AND webhook_id = $2 AND consecutive_failures <> 0",
            )
            .bind(&due.project_id)
            .bind(&due.webhook_id)
            .execute(&mut *tx)
            .await?;
        } else {
            let failed: Option<(i32, bool, String, String, i64)> = sqlx::query_as(
                "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1 \
                 WHERE project_id = $1 AND webhook_id = $2 AND active \
                 RETURNING consecutive_failures, active, creator, url, version",
            )
            .bind(&due.project_id)
            .bind(&due.webhook_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((failures, true, creator, url, version)) = failed
                && failures >= outcome.disable_after
            {
                made = disable(&mut tx, due, failures, &creator, &url, version, making).await?;
            }
        }
        tx.commit().await?;
        Ok(made)
    }
}

/// Turns a webhook off after `failures` failures in a row, fails its pending deliveries and tells
/// its creator.
async fn disable(
    conn: &mut PgConnection,
    due: &DueDelivery,
    failures: i32,
    creator: &str,
    url: &str,
    version: i64,
    making: &Making,
) -> Result<Made, Error> {
    let reason = format!("{failures} failed deliveries in a row");
    sqlx::query(
        "UPDATE webhooks SET active = false, disabled_reason = $3, update_time = now(), \
           version = version + 1 WHERE project_id = $1 AND webhook_id = $2",
    )
    .bind(&due.project_id)
    .bind(&due.webhook_id)
    .bind(&reason)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE deliveries SET state = 3 WHERE project_id = $1 AND webhook_id = $2 AND state = 1",
    )
    .bind(&due.project_id)
    .bind(&due.webhook_id)
    .execute(&mut *conn)
    .await?;
    let name = due.webhook_name();
    tracing::warn!(webhook = %name, failures, "webhook turned off");
    let draft = rules::webhook_disabled(creator, &name, url, failures);
    Ok(inbox::make(
        conn,
        &draft,
        &format!("{name}/disabled/{version}"),
        making,
        Utc::now(),
    )
    .await?)
}
