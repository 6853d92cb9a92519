//! The notifications service's delivery lag: from a task assigned to a user (the CreateTask call
//! that commits its `TaskCreated`) to the `TASK_ASSIGNED` notification arriving on that user's open
//! SubscribeNotifications stream, at a steady rate; next to a floor measured in the same run at the
//! same rate: a JetStream publish (with its acknowledgement) delivered to a subscriber on the same
//! NATS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde::Serialize;
use taskmesh_contracts::notifications_v1::notification_service_client::NotificationServiceClient;
use taskmesh_contracts::notifications_v1::{
    Channel as NotificationChannel, ChannelSetting, NotificationKind, NotificationSettings,
    SubscribeNotificationsRequest, UpdateNotificationSettingsRequest,
};
use taskmesh_testing::Stack;
use tonic::transport::Channel;

use crate::fire_lag::{Bearer, Quantiles, histogram};
use crate::platform::{self, Platform};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Assignments per second.
    pub rate: f64,
    /// How long assignments are made.
    pub duration: Duration,
    /// Whether the listener's assignments are also emailed (by default the listener turns email
    /// off for them: the measured path is the stream, and the mail server runs on the same cores).
    pub email: bool,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyLag {
    /// Assignments per second asked.
    pub rate: f64,
    /// Assignments made.
    pub sent: usize,
    /// Their notifications that arrived on the stream.
    pub received: usize,
    /// CreateTask sent -> notification on the stream.
    pub lag: Quantiles,
    /// The floor: JetStream publish+ack -> delivered.
    pub floor: Quantiles,
    /// Whether each notification was also emailed.
    pub email: bool,
}

/// The `n` of a notification titled `… assigned you “notify n”`.
fn number_in(title: &str) -> Option<usize> {
    let start = title.find("“notify ")? + "“notify ".len();
    let rest = &title[start..];
    rest[..rest.find('”')?].parse().ok()
}

/// Runs the measurement against the notifications service at `endpoint`: a second user joins
/// `platform`'s project and listens; `platform`'s user assigns them tasks at the rate.
pub async fn measure(
    platform: &Platform,
    endpoint: &str,
    gateway_http: &str,
    stack: &Stack,
    options: Options,
) -> anyhow::Result<NotifyLag> {
    let floor = floor(stack, options).await?;
    let http = reqwest::Client::new();
    let (listener, token) = platform::sign_up(&http, gateway_http).await?;
    platform.add_member(&listener).await?;
    let channel = Channel::from_shared(endpoint.to_owned())?
        .connect()
        .await
        .with_context(|| format!("cannot connect to the notifications service at {endpoint}"))?;
    let bearer = format!("Bearer {token}")
        .parse()
        .context("an ASCII token")?;
    let mut client = NotificationServiceClient::with_interceptor(channel, Bearer(bearer));
    if !options.email {
        client
            .update_notification_settings(UpdateNotificationSettingsRequest {
                settings: Some(NotificationSettings {
                    name: format!("{listener}/notificationSettings"),
                    channels: vec![ChannelSetting {
                        kind: NotificationKind::TaskAssigned as i32,
                        channel: NotificationChannel::Email as i32,
                        enabled: false,
                    }],
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["channels".into()],
                }),
            })
            .await
            .context("turning the listener's assignment emails off")?;
    }
    let mut stream = client
        .subscribe_notifications(SubscribeNotificationsRequest {
            parent: listener.clone(),
            cursor: String::new(),
        })
        .await
        .context("subscribing")?
        .into_inner();

    let rounds = (options.rate * options.duration.as_secs_f64()).ceil() as usize;
    eprintln!(
        "notify lag: {rounds} assignments at {:.0}/s to {listener}",
        options.rate
    );
    let started: Arc<Mutex<HashMap<usize, Instant>>> = Arc::default();
    let sender = {
        let (platform, started, listener) =
            (platform.clone(), Arc::clone(&started), listener.clone());
        let interval = Duration::from_secs_f64(1.0 / options.rate.max(0.001));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            let mut calls = Vec::with_capacity(rounds);
            for n in 0..rounds {
                ticks.tick().await;
                let (platform, started, listener) =
                    (platform.clone(), Arc::clone(&started), listener.clone());
                // Each call on its own, so a slow one does not hold the rate back.
                calls.push(tokio::spawn(async move {
                    started.lock().expect("started").insert(n, Instant::now());
                    platform
                        .create_assigned(&format!("notify {n}"), &listener)
                        .await
                        .is_ok()
                }));
            }
            let mut sent = 0;
            for call in calls {
                if call.await.unwrap_or(false) {
                    sent += 1;
                }
            }
            sent
        })
    };
    let mut lag = histogram();
    let mut received = 0;
    let deadline = tokio::time::Instant::now() + options.duration + Duration::from_secs(15);
    while received < rounds {
        let Ok(Some(Ok(notification))) = tokio::time::timeout_at(deadline, stream.next()).await
        else {
            break;
        };
        let arrived = Instant::now();
        let Some(n) = number_in(&notification.title) else {
            continue;
        };
        if let Some(at) = started.lock().expect("started").get(&n) {
            let us = arrived.duration_since(*at).as_micros();
            let _ = lag.record(u64::try_from(us).unwrap_or(u64::MAX).max(1));
            received += 1;
        }
    }
    let sent = sender.await.unwrap_or(0);
    Ok(NotifyLag {
        rate: options.rate,
        sent,
        received,
        lag: Quantiles::of(&lag),
        floor,
        email: options.email,
    })
}

/// The floor: at the same rate, a message published on JetStream with its acknowledgement, then
/// delivered to a subscriber; from before the publish to the delivery.
async fn floor(stack: &Stack, options: Options) -> anyhow::Result<Quantiles> {
    let nats = taskmesh_events::nats::connect_once(&stack.nats_url, "load", None)
        .await
        .context("connecting to NATS as the operator")?;
    let js = async_nats::jetstream::new(nats.clone());
    let _ = js.delete_stream("LOAD_NOTIFY_FLOOR").await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "LOAD_NOTIFY_FLOOR".to_owned(),
        subjects: vec!["taskmesh.loadnotify.>".to_owned()],
        max_messages: 100_000,
        ..Default::default()
    })
    .await?;
    let mut delivered = nats.subscribe("taskmesh.loadnotify.>").await?;
    let rounds = (options.rate * 10.0).ceil() as u64;
    let interval = Duration::from_secs_f64(1.0 / options.rate.max(0.001));
    eprintln!(
        "notify lag floor: {rounds} publishes at {:.0}/s",
        options.rate
    );
    let epoch = Instant::now();
    let sender = tokio::spawn({
        let js = js.clone();
        async move {
            let mut ticks = tokio::time::interval(interval);
            for n in 0..rounds {
                ticks.tick().await;
                let at = epoch.elapsed().as_micros().to_string();
                if let Ok(ack) = js
                    .publish(format!("taskmesh.loadnotify.{n}"), at.into())
                    .await
                {
                    let _ = ack.await;
                }
            }
        }
    });
    let mut floor = histogram();
    let deadline =
        tokio::time::Instant::now() + interval.mul_f64(rounds as f64) + Duration::from_secs(5);
    while floor.len() < rounds {
        let Ok(Some(message)) = tokio::time::timeout_at(deadline, delivered.next()).await else {
            break;
        };
        let arrived = epoch.elapsed().as_micros();
        if let Some(at) = std::str::from_utf8(&message.payload)
            .ok()
            .and_then(|t| t.parse::<u128>().ok())
        {
            let us = arrived.saturating_sub(at);
            let _ = floor.record(u64::try_from(us).unwrap_or(u64::MAX).max(1));
        }
    }
    let _ = sender.await;
    let _ = js.delete_stream("LOAD_NOTIFY_FLOOR").await;
    Ok(Quantiles::of(&floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_number_of_an_assignment() {
        assert_eq!(number_in("load1 assigned you “notify 42”"), Some(42));
        assert_eq!(number_in("something else"), None);
    }
}
