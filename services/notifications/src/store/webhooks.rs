//! A project's webhooks and their delivery logs. Secrets are stored sealed; the API shows a
//! secret only in the answer that made it.

use chrono::{DateTime, Utc};
use taskmesh_contracts::notifications_v1::{
    NotificationKind, Webhook, WebhookAttempt, WebhookDelivery, webhook_delivery,
};
use taskmesh_mesh::aip;
use taskmesh_mesh::time::to_timestamp as ts;
use uuid::Uuid;

use super::Store;
use crate::error::Error;

const COLUMNS: &str = "project_id, webhook_id, url, filter, active, secret, consecutive_failures, \
                       disabled_reason, creator, create_time, update_time, version";

/// One webhook row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    /// Project id.
    pub project_id: String,
    /// Webhook id.
    pub webhook_id: String,
    /// Endpoint.
    pub url: String,
    /// Filter text.
    pub filter: String,
    /// Delivering or not.
    pub active: bool,
    /// Sealed secret.
    pub secret: String,
    /// Failures in a row.
    pub consecutive_failures: i32,
    /// Why it was turned off.
    pub disabled_reason: String,
    /// `users/{user}`.
    pub creator: String,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Changed.
    pub update_time: DateTime<Utc>,
    /// Change counter.
    pub version: i64,
}

impl Row {
    /// `projects/{project}/webhooks/{webhook}`.
    pub fn name(&self) -> String {
        format!("projects/{}/webhooks/{}", self.project_id, self.webhook_id)
    }

    /// The etag.
    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }

    /// As the API shows it (no secret).
    pub fn to_proto(&self) -> Webhook {
        Webhook {
            name: self.name(),
            url: self.url.clone(),
            filter: self.filter.clone(),
            active: self.active,
            secret: String::new(),
            consecutive_failures: self.consecutive_failures,
            disabled_reason: self.disabled_reason.clone(),
            creator: self.creator.clone(),
            create_time: Some(ts(self.create_time)),
            update_time: Some(ts(self.update_time)),
            etag: self.etag(),
        }
    }
}

/// A new webhook.
#[derive(Debug)]
pub struct NewWebhook<'a> {
    /// Project id.
    pub project: &'a str,
    /// Webhook id.
    pub id: &'a str,
    /// Endpoint.
    pub url: &'a str,
    /// Filter text (checked).
    pub filter: &'a str,
    /// Active.
    pub active: bool,
    /// Sealed secret.
    pub secret: &'a str,
    /// `users/{user}`.
    pub creator: &'a str,
    /// Idempotency key.
    pub request_id: Option<Uuid>,
}

/// Changes of a webhook.
#[derive(Debug, Default)]
pub struct WebhookChange {
    /// New endpoint.
    pub url: Option<String>,
    /// New filter.
    pub filter: Option<String>,
    /// Active or not.
    pub active: Option<bool>,
    /// New sealed secret.
    pub secret: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
struct DeliveryRow {
    project_id: String,
    webhook_id: String,
    delivery_id: String,
    notification_id: String,
    kind: i16,
    message_id: String,
    state: i16,
    attempts: serde_json::Value,
    next_attempt_time: Option<DateTime<Utc>>,
    create_time: DateTime<Utc>,
    recipient: Option<String>,
}

/// One attempt as logged.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LoggedAttempt {
    /// 1 for the first.
    pub number: i32,
    /// When sent.
    pub time: DateTime<Utc>,
    /// HTTP status, 0 for none.
    pub status_code: i32,
    /// How long it took.
    pub latency_ms: i64,
    /// What went wrong.
    pub error: String,
}

impl DeliveryRow {
    fn into_proto(self) -> WebhookDelivery {
        let attempts: Vec<LoggedAttempt> =
            serde_json::from_value(self.attempts).unwrap_or_default();
        let recipient = self.recipient.unwrap_or_default();
        WebhookDelivery {
            name: format!(
                "projects/{}/webhooks/{}/deliveries/{}",
                self.project_id, self.webhook_id, self.delivery_id
            ),
            message_id: self.message_id,
            notification: format!("users/{recipient}/notifications/{}", self.notification_id),
            kind: NotificationKind::try_from(i32::from(self.kind))
                .unwrap_or(NotificationKind::Unspecified) as i32,
            state: webhook_delivery::State::try_from(i32::from(self.state))
                .unwrap_or(webhook_delivery::State::Unspecified) as i32,
            attempts: attempts
                .into_iter()
                .map(|a| WebhookAttempt {
                    number: a.number,
                    time: Some(ts(a.time)),
                    status_code: a.status_code,
                    latency: Some(prost_types::Duration {
                        seconds: a.latency_ms / 1000,
                        nanos: i32::try_from((a.latency_ms % 1000) * 1_000_000).unwrap_or(0),
                    }),
                    error: a.error,
                })
                .collect(),
            create_time: Some(ts(self.create_time)),
            next_attempt_time: if self.state == webhook_delivery::State::Pending as i16 {
                self.next_attempt_time.map(ts)
            } else {
                None
            },
        }
    }
}

const DELIVERY_COLUMNS: &str = "d.project_id, d.webhook_id, d.delivery_id, d.notification_id, d.kind, \
     d.message_id, d.state, d.attempts, d.next_attempt_time, d.create_time, n.user_id AS recipient";

impl Store {
    /// Creates a webhook; a repeated request id returns the first one (`false`: not new).
    pub async fn create_webhook(
        &self,
        new: &NewWebhook<'_>,
        max_per_project: i64,
    ) -> Result<(Row, bool), Error> {
        let mut tx = self.pool().begin().await?;
        // One creation at a time per project, so the count below holds.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('webhooks/' || $1))")
            .bind(new.project)
            .execute(&mut *tx)
            .await?;
        if let Some(request_id) = new.request_id {
            let existing: Option<Row> = sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM webhooks WHERE project_id = $1 AND request_id = $2"
            ))
            .bind(new.project)
            .bind(request_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(existing) = existing {
                return Ok((existing, false));
            }
        }
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks WHERE project_id = $1")
            .bind(new.project)
            .fetch_one(&mut *tx)
            .await?;
        if count >= max_per_project {
            return Err(Error::TooManyWebhooks {
                max: max_per_project,
            });
        }
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO webhooks (project_id, webhook_id, url, filter, active, secret, creator, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        ))
        .bind(new.project)
        .bind(new.id)
        .bind(new.url)
        .bind(new.filter)
        .bind(new.active)
        .bind(new.secret)
        .bind(new.creator)
        .bind(new.request_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((row, true))
    }

    /// A webhook.
    pub async fn webhook(&self, project: &str, id: &str) -> Result<Row, Error> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM webhooks WHERE project_id = $1 AND webhook_id = $2"
        ))
        .bind(project)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.ok_or_else(|| Error::NotFound(format!("projects/{project}/webhooks/{id}")))
    }

    /// One page of a project's webhooks, oldest first.
    pub async fn list_webhooks(
        &self,
        project: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Row>, String), Error> {
        let fp = aip::fingerprint(&["webhooks", project]);
        let page = aip::page(page_size, page_token, &fp)?;
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM webhooks WHERE project_id = $1 \
             ORDER BY create_time, webhook_id LIMIT $2 OFFSET $3"
        ))
        .bind(project)
        .bind(page.size + 1)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await?;
        Ok(aip::split_page(rows, page, &fp))
    }

    /// Applies `change` to a webhook whose etag, when given, is current. Turning it active again
    /// clears its failures.
    pub async fn update_webhook(
        &self,
        project: &str,
        id: &str,
        etag: &str,
        change: WebhookChange,
    ) -> Result<Row, Error> {
        let mut tx = self.pool().begin().await?;
        let current = locked(&mut tx, project, id, etag).await?;
        let reactivated = change.active == Some(true) && !current.active;
        let row: Row = sqlx::query_as(&format!(
            "UPDATE webhooks SET url = coalesce($3, url), filter = coalesce($4, filter), \
               active = coalesce($5, active), secret = coalesce($6, secret), \
               consecutive_failures = CASE WHEN $7 THEN 0 ELSE consecutive_failures END, \
               disabled_reason = CASE WHEN $7 THEN '' ELSE disabled_reason END, \
               update_time = now(), version = version + 1 \
             WHERE project_id = $1 AND webhook_id = $2 RETURNING {COLUMNS}"
        ))
        .bind(project)
        .bind(id)
        .bind(change.url)
        .bind(change.filter)
        .bind(change.active)
        .bind(change.secret)
        .bind(reactivated)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Deletes a webhook, whose etag, when given, is current, and its deliveries.
    pub async fn delete_webhook(&self, project: &str, id: &str, etag: &str) -> Result<(), Error> {
        let mut tx = self.pool().begin().await?;
        locked(&mut tx, project, id, etag).await?;
        sqlx::query("DELETE FROM webhooks WHERE project_id = $1 AND webhook_id = $2")
            .bind(project)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One page of a webhook's deliveries, newest first.
    pub async fn list_deliveries(
        &self,
        project: &str,
        webhook: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<WebhookDelivery>, String), Error> {
        self.webhook(project, webhook).await?;
        let fp = aip::fingerprint(&["deliveries", project, webhook]);
        let page = aip::page(page_size, page_token, &fp)?;
        let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d \
             LEFT JOIN notifications n ON n.id = d.notification_id \
             WHERE d.project_id = $1 AND d.webhook_id = $2 \
             ORDER BY d.create_time DESC, d.delivery_id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(project)
        .bind(webhook)
        .bind(page.size + 1)
        .bind(page.offset)
        .fetch_all(self.pool())
        .await?;
        let (rows, token) = aip::split_page(rows, page, &fp);
        Ok((
            rows.into_iter().map(DeliveryRow::into_proto).collect(),
            token,
        ))
    }

    /// Queues a delivery again at once, whatever its state (same message id and payload).
    pub async fn redeliver(
        &self,
        project: &str,
        webhook: &str,
        delivery: &str,
    ) -> Result<WebhookDelivery, Error> {
        let updated = sqlx::query(
            "UPDATE deliveries SET state = 1, next_attempt_time = now() \
             WHERE project_id = $1 AND webhook_id = $2 AND delivery_id = $3",
        )
        .bind(project)
        .bind(webhook)
        .bind(delivery)
        .execute(self.pool())
        .await?;
        let name = format!("projects/{project}/webhooks/{webhook}/deliveries/{delivery}");
        if updated.rows_affected() == 0 {
            return Err(Error::NotFound(name));
        }
        self.delivery(project, webhook, delivery).await
    }

    /// One delivery.
    pub async fn delivery(
        &self,
        project: &str,
        webhook: &str,
        delivery: &str,
    ) -> Result<WebhookDelivery, Error> {
        let row: Option<DeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d \
             LEFT JOIN notifications n ON n.id = d.notification_id \
             WHERE d.project_id = $1 AND d.webhook_id = $2 AND d.delivery_id = $3"
        ))
        .bind(project)
        .bind(webhook)
        .bind(delivery)
        .fetch_optional(self.pool())
        .await?;
        row.map(DeliveryRow::into_proto).ok_or_else(|| {
            Error::NotFound(format!(
                "projects/{project}/webhooks/{webhook}/deliveries/{delivery}"
            ))
        })
    }
}

/// The webhook, locked until the end of `tx`, when `etag` (if given) is current.
async fn locked(
    tx: &mut sqlx::PgConnection,
    project: &str,
    id: &str,
    etag: &str,
) -> Result<Row, Error> {
    let current: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhooks WHERE project_id = $1 AND webhook_id = $2 FOR UPDATE"
    ))
    .bind(project)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let current =
        current.ok_or_else(|| Error::NotFound(format!("projects/{project}/webhooks/{id}")))?;
    if !etag.is_empty() && etag != current.etag() {
        return Err(Error::EtagMismatch {
            name: current.name(),
            current: current.etag(),
        });
    }
    Ok(current)
}
