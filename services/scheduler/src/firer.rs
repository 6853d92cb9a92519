//! The firer: the background loop that fires due schedules and alarms (reminders, overdue checks). It claims a batch, fires it, and
//! sleeps until the earliest next fire time (at most `firing.poll_ms`, so that schedules made on
//! other replicas are seen), or until this process creates or resumes a schedule.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use prometheus::{Histogram, IntCounter};
use tokio::sync::{Notify, watch};

use crate::config::Firing;
use crate::store::Store;

/// The firer's counters.
#[derive(Debug, Clone)]
pub struct FirerMetrics {
    fired: IntCounter,
    skipped: IntCounter,
    round: Histogram,
}

impl FirerMetrics {
    /// Registers `scheduler_fired_total`, `scheduler_skipped_total` and
    /// `scheduler_round_seconds`.
    pub fn register(metrics: &taskmesh_mesh::Metrics) -> Self {
        let this = Self {
            fired: IntCounter::new("scheduler_fired_total", "occurrences fired")
                .expect("valid metric definition"),
            skipped: IntCounter::new(
                "scheduler_skipped_total",
                "occurrences skipped by a misfire policy or the catch-up window",
            )
            .expect("valid metric definition"),
            round: Histogram::with_opts(
                prometheus::HistogramOpts::new(
                    "scheduler_round_seconds",
                    "time one firing round takes (claim, fire, commit)",
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ]),
            )
            .expect("valid metric definition"),
        };
        metrics.register(Box::new(this.fired.clone()));
        metrics.register(Box::new(this.skipped.clone()));
        metrics.register(Box::new(this.round.clone()));
        this
    }
}

/// Fires due schedules until stopped.
#[derive(Debug)]
pub struct Firer {
    store: Store,
    settings: Firing,
    wake: Arc<Notify>,
    metrics: FirerMetrics,
}

impl Firer {
    /// A firer over `store`; `wake` cuts its sleep short.
    pub fn new(store: Store, settings: Firing, wake: Arc<Notify>, metrics: FirerMetrics) -> Self {
        Self {
            store,
            settings,
            wake,
            metrics,
        }
    }

    /// Runs until `stop` turns true. A failed round (the database away) is retried after the
    /// poll interval; nothing is lost, the schedules stay due.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let poll = self.settings.poll();
        loop {
            if *stop.borrow() {
                return;
            }
            let wait = match self.round().await {
                Ok(true) => continue,
                Ok(false) => self.until_next(poll).await,
                Err(err) => {
                    tracing::warn!(error = %taskmesh_mesh::status::error_chain(&err), "firing round failed; retrying");
                    poll
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Fires the schedules and the alarms that are due; true when more may be due right now (a
    /// whole batch was taken).
    async fn round(&self) -> Result<bool, crate::Error> {
        let started = std::time::Instant::now();
        let round = self.store.fire_due(&self.settings, Utc::now()).await?;
        let alarms = self
            .store
            .fire_alarms(self.settings.batch, Utc::now())
            .await?;
        self.metrics.round.observe(started.elapsed().as_secs_f64());
        self.metrics.fired.inc_by((round.fired + alarms) as u64);
        self.metrics
            .skipped
            .inc_by(u64::try_from(round.skipped).unwrap_or(0));
        let full = self.settings.batch as usize;
        Ok(round.claimed == full || alarms == full)
    }

    /// How long to sleep: until the earliest next fire time of a schedule or an alarm, at most
    /// `poll`.
    async fn until_next(&self, poll: Duration) -> Duration {
        let next = self.store.next_wake().await.ok().flatten();
        match next {
            Some(next) => (next - Utc::now())
                .to_std()
                .map_or(Duration::ZERO, |left| left.min(poll)),
            None => poll,
        }
    }
}
