//! The loops that deliver what the inboxes queued: [`email`] over SMTP, [`webhooks`] over HTTP,
//! and [`agenda`], which makes each user's daily agenda. Each claims its work in the database, so
//! any number of replicas share it, and sleeps until woken by a commit of this process, the next
//! due time, or its poll interval.

pub mod agenda;
pub mod email;
pub mod webhooks;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::{Notify, watch};

/// Sleeps until `wake`, `until` (capped at `poll`), or the stop; false when stopping.
async fn nap(
    wake: &Notify,
    until: Option<DateTime<Utc>>,
    poll: Duration,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let sleep = until
        .map(|t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO))
        .map_or(poll, |d| d.min(poll));
    tokio::select! {
        () = wake.notified() => true,
        () = tokio::time::sleep(sleep) => true,
        _ = stop.changed() => false,
    }
}

/// Exponential backoff with full jitter in its upper half: `first * 2^(attempt-1)`, capped.
fn backoff(first: Duration, max: Duration, attempt: i32) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let base = first.saturating_mul(1_u32 << exponent).min(max);
    let half = base / 2;
    half + Duration::from_millis(
        rand::rng().random_range(0..=u64::try_from(half.as_millis()).unwrap_or(u64::MAX)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let first = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for attempt in 1..=10 {
            let delay = backoff(first, max, attempt);
            let base = (first * 2_u32.pow(u32::try_from(attempt - 1).unwrap_or(0))).min(max);
            assert!(delay >= base / 2 && delay <= base, "{attempt}: {delay:?}");
        }
    }
}
