//! Drives one operation at a fixed concurrency for a request count or a duration, after a warm-up,
//! and records every call's latency in an HDR histogram (microseconds, 3 significant digits).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// How much load to apply.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Stop after this many measured calls...
    pub requests: Option<u64>,
    /// ...or after this long.
    pub duration: Duration,
    /// Calls made before measuring, not recorded.
    pub warmup: Duration,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed (not in the histogram).
    pub errors: u64,
    /// The first error seen, to tell what went wrong.
    pub first_error: Option<String>,
    /// Wall time of the measured part.
    pub elapsed: Duration,
    /// Latencies of the successful calls, in microseconds.
    pub latencies: Histogram<u64>,
}

impl Measured {
    fn empty() -> Self {
        Self {
            ok: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latencies: histogram(),
        }
    }

    /// Successful calls per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A latency quantile in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latencies.value_at_quantile(q) as f64 / 1000.0
    }

    /// The slowest call in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.latencies.max() as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// Records one call's latency (at least 1 µs; beyond the histogram's range it saturates).
fn record(latencies: &mut Histogram<u64>, took: Duration) {
    let micros = u64::try_from(took.as_micros().max(1)).unwrap_or(u64::MAX);
    latencies.saturating_record(micros);
}

/// Runs `call(n)` (n counts calls from 0, warm-up included) under `load`.
pub async fn run<F, Fut>(load: Load, call: F) -> Measured
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let call = Arc::new(call);
    let counter = Arc::new(AtomicU64::new(0));
    // Warm-up: same concurrency, nothing recorded.
    let warm_until = Instant::now() + load.warmup;
    let warmers: Vec<_> = (0..load.concurrency)
        .map(|_| {
            let (call, counter) = (Arc::clone(&call), Arc::clone(&counter));
            tokio::spawn(async move {
                while Instant::now() < warm_until {
                    let _ = call(counter.fetch_add(1, Ordering::Relaxed)).await;
                }
            })
        })
        .collect();
    for warmer in warmers {
        let _ = warmer.await;
    }

    let measured = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + load.duration;
    let workers: Vec<_> = (0..load.concurrency)
        .map(|_| {
            let (call, counter, measured) = (
                Arc::clone(&call),
                Arc::clone(&counter),
                Arc::clone(&measured),
            );
            tokio::spawn(async move {
                let mut latencies = histogram();
                let (mut errors, mut first_error) = (0_u64, None);
                loop {
                    if let Some(limit) = load.requests {
                        if measured.fetch_add(1, Ordering::Relaxed) >= limit {
                            break;
                        }
                    } else if Instant::now() >= deadline {
                        break;
                    }
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let began = Instant::now();
                    match call(n).await {
                        Ok(()) => record(&mut latencies, began.elapsed()),
                        Err(err) => {
                            errors += 1;
                            first_error.get_or_insert(err);
                        }
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    let mut total = Measured::empty();
    for worker in workers {
        let (latencies, errors, first_error) = worker.await.expect("a load worker panicked");
        total.latencies.add(&latencies).expect("same bounds");
        total.errors += errors;
        if total.first_error.is_none() {
            total.first_error = first_error;
        }
    }
    total.elapsed = start.elapsed();
    total.ok = total.latencies.len();
    total
}

/// Starts `call(n)` at `rate` calls per second for `duration` (open loop: a slow answer does not
/// slow the next start), with at most `in_flight` unanswered; a start that finds them all taken
/// waits, so the achieved rate says whether the platform kept up.
pub async fn run_at_rate<F, Fut>(
    rate: f64,
    duration: Duration,
    in_flight: usize,
    call: F,
) -> Measured
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let call = Arc::new(call);
    let slots = Arc::new(tokio::sync::Semaphore::new(in_flight.max(1)));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1.0)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut calls = Vec::new();
    let mut n = 0_u64;
    while start.elapsed() < duration {
        ticker.tick().await;
        let slot = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let call = Arc::clone(&call);
        calls.push(tokio::spawn(async move {
            let began = Instant::now();
            let outcome = call(n).await;
            drop(slot);
            outcome.map(|()| began.elapsed())
        }));
        n += 1;
    }
    let mut total = Measured::empty();
    for call in calls {
        match call.await.expect("a call panicked") {
            Ok(took) => record(&mut total.latencies, took),
            Err(err) => {
                total.errors += 1;
                total.first_error.get_or_insert(err);
            }
        }
    }
    total.elapsed = start.elapsed();
    total.ok = total.latencies.len();
    total
}
