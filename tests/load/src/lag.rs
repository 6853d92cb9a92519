//! Event lag: from a task event's change to its handling by the consumers behind it (the tasks
//! read model, the execution intake), read from the services' own
//! `taskmesh_consumer_event_age_seconds` histograms around a run of writes at a fixed rate.

use std::collections::BTreeMap;

use anyhow::Context;

/// A consumer's cumulative histogram: bucket upper bound (seconds) to count.
pub type Buckets = BTreeMap<u64, u64>;

/// Where a service's metrics are, and which of its consumers to read.
#[derive(Debug, Clone)]
pub struct Watched {
    /// `http://127.0.0.1:51053/metrics`.
    pub metrics: String,
    /// The durable consumer.
    pub consumer: String,
}

fn key(le: f64) -> u64 {
    // Nanoseconds keep the buckets' order exact; +Inf sorts last.
    if le.is_infinite() {
        u64::MAX
    } else {
        (le * 1e9).round() as u64
    }
}

/// The cumulative buckets of `consumer` in Prometheus text `body`.
pub fn parse(body: &str, consumer: &str) -> Buckets {
    let label = format!("consumer=\"{consumer}\"");
    body.lines()
        .filter(|line| line.contains("consumer_event_age_seconds_bucket") && line.contains(&label))
        .filter_map(|line| {
            let le = line.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count = line.rsplit(' ').next()?.parse().ok()?;
            Some((key(le), count))
        })
        .collect()
}

/// Reads the buckets of `watched` now.
pub async fn read(http: &reqwest::Client, watched: &Watched) -> anyhow::Result<Buckets> {
    let body = http
        .get(&watched.metrics)
        .send()
        .await
        .with_context(|| format!("cannot read {}", watched.metrics))?
        .text()
        .await?;
    Ok(parse(&body, &watched.consumer))
}

/// Events handled so far (the `+Inf` bucket).
fn total(buckets: &Buckets) -> u64 {
    buckets.get(&u64::MAX).copied().unwrap_or_default()
}

/// Waits until the consumers of `watched` have handled nothing new for `quiet` (the events of
/// earlier writes are through), at most `limit`; says whether they settled.
pub async fn settle(
    http: &reqwest::Client,
    watched: &[Watched],
    quiet: std::time::Duration,
    limit: std::time::Duration,
) -> anyhow::Result<bool> {
    let start = std::time::Instant::now();
    let mut last = Vec::new();
    let mut still_since = std::time::Instant::now();
    loop {
        let mut now = Vec::with_capacity(watched.len());
        for w in watched {
            now.push(total(&read(http, w).await?));
        }
        if now != last {
            last = now;
            still_since = std::time::Instant::now();
        } else if still_since.elapsed() >= quiet {
            return Ok(true);
        }
        if start.elapsed() >= limit {
            return Ok(false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// What happened between `before` and `after`: the events handled, and the upper bound of the
/// bucket holding quantile `q` of them, in milliseconds (`None` when nothing was handled).
pub fn quantile_ms(before: &Buckets, after: &Buckets, q: f64) -> Option<f64> {
    let total =
        after.values().max().copied().unwrap_or(0) - before.values().max().copied().unwrap_or(0);
    if total == 0 {
        return None;
    }
    let wanted = (q * total as f64).ceil() as u64;
    after.iter().find_map(|(le, count)| {
        let delta = count - before.get(le).copied().unwrap_or(0);
        (delta >= wanted).then(|| {
            if *le == u64::MAX {
                f64::INFINITY
            } else {
                *le as f64 / 1e6
            }
        })
    })
}

/// Events handled between `before` and `after`.
pub fn handled(before: &Buckets, after: &Buckets) -> u64 {
    after.values().max().copied().unwrap_or(0) - before.values().max().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_difference_of_two_readings() {
        let before = parse(
            "taskmesh_consumer_event_age_seconds_bucket{consumer=\"c\",le=\"0.005\"} 10\n\
             taskmesh_consumer_event_age_seconds_bucket{consumer=\"c\",le=\"0.01\"} 10\n\
             taskmesh_consumer_event_age_seconds_bucket{consumer=\"c\",le=\"+Inf\"} 10\n\
             taskmesh_consumer_event_age_seconds_bucket{consumer=\"other\",le=\"+Inf\"} 99\n",
            "c",
        );
        let after = parse(
            "taskmesh_consumer_event_age_seconds_bucket{consumer=\"c\",le=\"0.005\"} 100\n\
             taskmesh_consumer_event_age_seconds_bucket{consumer=\"c\",le=\"0.01\"} 109\n\
             taskmesh_consumer_event_age_seconds_bucket{consumer=\"c\",le=\"+Inf\"} 110\n",
            "c",
        );
        assert_eq!(handled(&before, &after), 100);
        assert_eq!(quantile_ms(&before, &after, 0.5), Some(5.0));
        assert_eq!(quantile_ms(&before, &after, 0.99), Some(10.0));
        assert_eq!(quantile_ms(&before, &after, 1.0), Some(f64::INFINITY));
        assert_eq!(quantile_ms(&after, &after, 0.5), None);
    }
}
