//! Webhook delivery: each due delivery is POSTed to its endpoint through the egress policy (no
//! address inside the platform, no redirects, bounded time and answer), signed per Standard
//! Webhooks with a fresh timestamp and the delivery's fixed `webhook-id`. A 2xx settles it;
//! anything else is retried with exponential backoff and jitter until `max_attempts`, and counts
//! towards turning the webhook off. Deliveries run side by side, so a slow endpoint holds up only
//! its own.

use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeDelta, Utc};
use futures::StreamExt;
use taskmesh_mesh::egress::{Egress, EgressRequest};
use taskmesh_mesh::sealed::Sealer;
use tokio::sync::{Notify, watch};

use super::{backoff, nap};
use crate::config::{self, Webhooks};
use crate::domain::signing;
use crate::events::Wake;
use crate::store::Store;
use crate::store::inbox::Making;
use crate::store::outgoing::{AttemptOutcome, DueDelivery};
use crate::store::webhooks::LoggedAttempt;

/// Deliveries attempted at the same time by one process.
const CONCURRENCY: usize = 16;

/// What the webhook loop needs.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The database.
    pub store: Store,
    /// The way out.
    pub egress: Egress,
    /// Opens the secrets.
    pub sealer: Sealer,
    /// Retries and limits.
    pub settings: Webhooks,
    /// For the notification of a webhook turned off.
    pub making: Making,
    /// The loops to wake after that notification.
    pub wake: Wake,
}

/// Attempts due deliveries until stopped.
pub async fn run(sender: Sender, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let lease = config::millis(sender.settings.lease_ms);
    let poll = config::millis(sender.settings.poll_ms);
    loop {
        if *stop.borrow() {
            return;
        }
        match sender
            .store
            .claim_deliveries(sender.settings.batch, lease)
            .await
        {
            Ok(due) if !due.is_empty() => {
                let full = due.len() >= sender.settings.batch as usize;
                futures::stream::iter(due)
                    .for_each_concurrent(CONCURRENCY, |delivery| {
                        let sender = &sender;
                        async move { sender.attempt(&delivery).await }
                    })
                    .await;
                if full {
                    continue;
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "cannot claim webhook deliveries"),
        }
        let next = sender.store.next_delivery_time().await.ok().flatten();
        if !nap(&wake, next, poll, &mut stop).await {
            return;
        }
    }
}

impl Sender {
    async fn attempt(&self, due: &DueDelivery) {
        let started = Instant::now();
        let time = Utc::now();
        let result = if due.active {
            self.post(due).await
        } else {
            Err((0, "the webhook is turned off".to_owned()))
        };
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (status_code, error) = match &result {
            Ok(status) => (*status, String::new()),
            Err((status, error)) => (*status, error.clone()),
        };
        let succeeded = result.is_ok();
        let retry_at = (!succeeded && due.active && due.attempt_count < self.settings.max_attempts)
            .then(|| {
                let delay = backoff(
                    config::millis(self.settings.first_backoff_ms),
                    config::millis(self.settings.max_backoff_ms),
                    due.attempt_count,
                );
                Utc::now() + TimeDelta::from_std(delay).unwrap_or(TimeDelta::minutes(1))
            });
        if !succeeded {
            tracing::info!(webhook = %due.webhook_name(), delivery = %due.delivery_id, attempt = due.attempt_count, status_code, %error, "webhook delivery failed");
        }
        let outcome = AttemptOutcome {
            attempt: LoggedAttempt {
                number: due.attempt_count,
                time,
                status_code,
                latency_ms,
                error,
            },
            succeeded,
            retry_at,
            disable_after: self.settings.disable_after_failures,
        };
        match self
            .store
            .settle_delivery(due, &outcome, &self.making)
            .await
        {
            Ok(made) => self.wake.after(made),
            Err(err) => {
                tracing::warn!(delivery = %due.delivery_id, error = %err, "cannot record the delivery's outcome; it will be attempted again");
            }
        }
    }

    /// POSTs the delivery; the status on 2xx, else the status (0 for none) and why.
    async fn post(&self, due: &DueDelivery) -> Result<i32, (i32, String)> {
        let secret = self
            .sealer
            .open(&due.webhook_name(), &due.secret)
            .map_err(|e| (0, format!("the secret cannot be opened: {e}")))?;
        let timestamp = Utc::now().timestamp();
        let signature = signing::sign(&secret, &due.message_id, timestamp, &due.payload)
            .map_err(|e| (0, e.to_string()))?;
        let request = EgressRequest {
            method: "POST".to_owned(),
            url: due.url.clone(),
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("webhook-id".to_owned(), due.message_id.clone()),
                ("webhook-timestamp".to_owned(), timestamp.to_string()),
                ("webhook-signature".to_owned(), signature),
            ],
            body: due.payload.clone().into_bytes(),
        };
        match self.egress.send(&request).await {
            Ok(response) if (200..300).contains(&response.status) => Ok(i32::from(response.status)),
            Ok(response) => Err((
                i32::from(response.status),
                format!("the endpoint answered {}", response.status),
            )),
            Err(err) => Err((0, err.to_string())),
        }
    }
}
