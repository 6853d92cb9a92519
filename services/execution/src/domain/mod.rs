//! The execution service's pure rules: when an execution is over, how long to wait before the
//! next attempt, and what a crawl found. No I/O, no tonic, no sqlx.

use std::time::Duration;

use taskmesh_contracts::execution_v1::{ExecutionState, Match};
use taskmesh_contracts::tasks_v1::Job;

/// Characters of context on each side of a match.
const CONTEXT_CHARS: usize = 40;
/// Matches kept in the result.
const MAX_MATCHES: usize = 50;
/// Final states end watching and retries.
pub fn is_final(state: ExecutionState) -> bool {
    matches!(
        state,
        ExecutionState::Succeeded | ExecutionState::Failed | ExecutionState::Cancelled
    )
}

/// The delay after the `attempt`-th failure: the job's backoff (default 1 s, ×2, at most 5 min)
/// with ±20 % jitter.
pub fn backoff(job: &Job, attempt: i32) -> Duration {
    let policy = job.backoff.unwrap_or_default();
    let initial = policy
        .initial
        .and_then(|d| Duration::try_from(d).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(1));
    let max = policy
        .max
        .and_then(|d| Duration::try_from(d).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(300));
    let multiplier = if policy.multiplier >= 1.0 {
        policy.multiplier
    } else {
        2.0
    };
    let backoff = taskmesh_events::consumer::Backoff {
        initial,
        max,
        multiplier,
        jitter: 0.2,
    };
    backoff.delay(i64::from(attempt))
}

/// Every case-insensitive occurrence of `query` in `text`, with its surroundings.
pub fn find(text: &str, query: &str) -> (i32, Vec<Match>) {
    let haystack: Vec<char> = text.chars().collect();
    let needle: Vec<char> = query.chars().flat_map(char::to_lowercase).collect();
    let lower: Vec<char> = haystack
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    if needle.is_empty() || needle.len() > lower.len() {
        return (0, Vec::new());
    }
    let mut count = 0;
    let mut matches = Vec::new();
    let mut i = 0;
    while i + needle.len() <= lower.len() {
        if lower[i..i + needle.len()] == needle[..] {
            count += 1;
            if matches.len() < MAX_MATCHES {
                let from = i.saturating_sub(CONTEXT_CHARS);
                let to = (i + needle.len() + CONTEXT_CHARS).min(haystack.len());
                matches.push(Match {
                    offset: i64::try_from(i).unwrap_or(i64::MAX),
                    context: haystack[from..to].iter().collect(),
                });
            }
            i += needle.len();
        } else {
            i += 1;
        }
    }
    (count, matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_counts_every_occurrence_case_insensitively_with_context() {
        let (count, matches) = find("Rust is fast. rust is safe. RUST!", "rust");
        assert_eq!(count, 3);
        assert_eq!(matches[1].offset, 14);
        assert!(matches[1].context.contains("rust is safe"));
        assert_eq!(find("nothing here", "rust").0, 0);
        assert_eq!(find("short", "much longer query").0, 0);
    }
}
