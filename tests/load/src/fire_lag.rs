//! The scheduler's fire lag: from an occurrence's time to its `ScheduleTriggered` arriving on
//! NATS, with many active schedules of which a steady share fires, next to a floor measured in the
//! same run at the same rate: a bare outbox round (a row `INSERT ... COMMIT`, then its JetStream
//! publish, then its delivery to a subscriber).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{TimeDelta, Utc};
use futures::StreamExt;
use hdrhistogram::Histogram;
use prost::Message;
use serde::Serialize;
use taskmesh_contracts::scheduler_v1::schedule_service_client::ScheduleServiceClient;
use taskmesh_contracts::scheduler_v1::{
    Action, CreateScheduleRequest, DeleteScheduleRequest, Interval, Notify, Schedule,
    ScheduleTriggered, Trigger, action, trigger,
};
use taskmesh_testing::Stack;
use tonic::transport::Channel;

use crate::platform::Platform;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Active schedules in all.
    pub schedules: usize,
    /// Of them, how many fire per minute (each once a minute, spread over the minute).
    pub per_minute: usize,
    /// How long firings are observed.
    pub duration: Duration,
}

/// Quantiles of one latency distribution, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Quantiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Quantiles {
    /// The quantiles of `histogram` (microseconds).
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.5)),
            p90_ms: ms(histogram.value_at_quantile(0.9)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct FireLag {
    /// Active schedules during the run.
    pub schedules: usize,
    /// Firings asked per minute.
    pub per_minute: usize,
    /// Occurrence time to the event's arrival.
    pub lag: Quantiles,
    /// The floor: insert, commit, publish, delivery.
    pub floor: Quantiles,
}

/// A latency histogram in microseconds, up to ten minutes.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

fn record(histogram: &mut Histogram<u64>, took: chrono::TimeDelta) {
    let us = took.num_microseconds().unwrap_or(0).max(1);
    let _ = histogram.record(u64::try_from(us).unwrap_or(1));
}

/// Adds the user's `authorization` to every call.
#[derive(Clone)]
pub struct Bearer(pub tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Client =
    ScheduleServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>>;

fn client(channel: Channel, bearer: &str) -> anyhow::Result<Client> {
    let value = bearer.parse().context("an ASCII token")?;
    Ok(ScheduleServiceClient::with_interceptor(
        channel,
        Bearer(value),
    ))
}

fn every(seconds: i64, start: chrono::DateTime<Utc>) -> Trigger {
    Trigger {
        kind: Some(trigger::Kind::Interval(Interval {
            every: Some(prost_types::Duration { seconds, nanos: 0 }),
            start_time: Some(prost_types::Timestamp {
                seconds: start.timestamp(),
                nanos: i32::try_from(start.timestamp_subsec_nanos()).unwrap_or(0),
            }),
            end_time: None,
        })),
    }
}

/// Creates the schedules, 16 at a time; returns their names.
async fn create_all(
    client: &Client,
    project: &str,
    triggers: Vec<Trigger>,
) -> anyhow::Result<Vec<String>> {
    let names = futures::stream::iter(triggers)
        .map(|trigger| {
            let mut client = client.clone();
            let project = project.to_owned();
            async move {
                client
                    .create_schedule(CreateScheduleRequest {
                        parent: project,
                        schedule: Some(Schedule {
                            display_name: "load".into(),
                            trigger: Some(trigger),
                            action: Some(Action {
                                kind: Some(action::Kind::Notify(Notify::default())),
                            }),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    })
                    .await
                    .map(|r| r.into_inner().name)
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    names
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .context("creating schedules")
}

/// Runs the measurement against the scheduler at `endpoint`, as `platform`'s user.
pub async fn measure(
    platform: &Platform,
    endpoint: &str,
    stack: &Stack,
    options: Options,
) -> anyhow::Result<FireLag> {
    let floor = floor(stack, options).await?;
    let channel = Channel::from_shared(endpoint.to_owned())?
        .connect()
        .await
        .with_context(|| format!("cannot connect to the scheduler at {endpoint}"))?;
    let client = client(channel, &platform.bearer())?;
    let nats = taskmesh_events::nats::connect_once(&stack.nats_url, "load", None)
        .await
        .context("connecting to NATS as the operator")?;
    let mut firings = nats
        .subscribe("taskmesh.scheduler.v1.schedule_triggered")
        .await?;

    let firing = options.per_minute.min(options.schedules);
    eprintln!(
        "fire lag: creating {} schedules ({firing} firing once a minute)",
        options.schedules
    );
    let tomorrow = Utc::now() + TimeDelta::days(1);
    let idle = (0..options.schedules - firing)
        .map(|_| every(86_400, tomorrow))
        .collect();
    let mut names = create_all(&client, &platform.project, idle).await?;
    let start = Utc::now() + TimeDelta::seconds(5);
    let spacing = 60_000_000 / i64::try_from(firing.max(1)).unwrap_or(1);
    let firing_triggers = (0..firing)
        .map(|i| {
            let offset = TimeDelta::microseconds(spacing * i64::try_from(i).unwrap_or(0));
            every(60, start + offset)
        })
        .collect();
    names.extend(create_all(&client, &platform.project, firing_triggers).await?);

    eprintln!("fire lag: observing for {:?}", options.duration);
    let mut lag = histogram();
    let prefix = format!("{}/", platform.project);
    let until = tokio::time::Instant::now()
        + (start - Utc::now()).to_std().unwrap_or_default()
        + options.duration;
    while let Ok(Some(message)) = tokio::time::timeout_at(until, firings.next()).await {
        let arrived = Utc::now();
        let Ok(event) = ScheduleTriggered::decode(message.payload.as_ref()) else {
            continue;
        };
        if !event.schedule.starts_with(&prefix) {
            continue;
        }
        if let Some(at) = instant_of(event.occurrence_time) {
            record(&mut lag, arrived - at);
        }
    }

    eprintln!("fire lag: deleting the schedules");
    futures::stream::iter(names)
        .map(|name| {
            let mut client = client.clone();
            async move {
                let _ = client
                    .delete_schedule(DeleteScheduleRequest {
                        name,
                        etag: String::new(),
                    })
                    .await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    Ok(FireLag {
        schedules: options.schedules,
        per_minute: firing,
        lag: Quantiles::of(&lag),
        floor,
    })
}

fn instant_of(timestamp: Option<prost_types::Timestamp>) -> Option<chrono::DateTime<Utc>> {
    let timestamp = timestamp?;
    chrono::DateTime::from_timestamp(timestamp.seconds, u32::try_from(timestamp.nanos).ok()?)
}

/// The floor: at the same rate, a row inserted and committed, then published on JetStream with
/// its acknowledgement, then delivered to a subscriber; from before the insert to the delivery.
async fn floor(stack: &Stack, options: Options) -> anyhow::Result<Quantiles> {
    let pool = crate::floors::outbox_pool(stack).await?;
    let nats = taskmesh_events::nats::connect_once(&stack.nats_url, "load", None)
        .await
        .context("connecting to NATS as the operator")?;
    let js = async_nats::jetstream::new(nats.clone());
    let _ = js.delete_stream("LOAD_OUTBOX_FLOOR").await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "LOAD_OUTBOX_FLOOR".to_owned(),
        subjects: vec!["taskmesh.loadoutbox.>".to_owned()],
        max_messages: 100_000,
        ..Default::default()
    })
    .await?;
    let mut delivered = nats.subscribe("taskmesh.loadoutbox.>").await?;
    let per_second = (options.per_minute.max(1) as f64) / 60.0;
    let interval = Duration::from_secs_f64(1.0 / per_second);
    let rounds = (20.0 * per_second).ceil() as u64;
    eprintln!("fire lag floor: {rounds} outbox rounds at {per_second:.1}/s");
    let pool = Arc::new(pool);
    let sender = tokio::spawn({
        let js = js.clone();
        async move {
            let mut ticks = tokio::time::interval(interval);
            for n in 0..rounds {
                ticks.tick().await;
                let started = Utc::now().timestamp_micros();
                let inserted = sqlx::query("INSERT INTO outbox (id, payload) VALUES ($1, $2)")
                    .bind(uuid::Uuid::now_v7())
                    .bind(started.to_string())
                    .execute(&*pool)
                    .await;
                if inserted.is_err() {
                    continue;
                }
                if let Ok(ack) = js
                    .publish(
                        format!("taskmesh.loadoutbox.{n}"),
                        started.to_string().into(),
                    )
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
        let arrived = Utc::now().timestamp_micros();
        if let Some(started) = std::str::from_utf8(&message.payload)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
        {
            let _ = floor.record(u64::try_from((arrived - started).max(1)).unwrap_or(1));
        }
    }
    let _ = sender.await;
    let _ = js.delete_stream("LOAD_OUTBOX_FLOOR").await;
    Ok(Quantiles::of(&floor))
}
