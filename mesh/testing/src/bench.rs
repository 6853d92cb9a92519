//! What the services' benchmarks share (`cargo bench -p taskmesh-notes --bench search`, ...):
//! settings from the environment, timed rounds with their percentiles, the median of interleaved
//! rounds, and the Markdown tables that compare each mode with the floor measured in the same run.

use std::future::Future;
use std::time::{Duration, Instant};

/// `name` from the environment as a number, or `default`.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Milliseconds, for the tables.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One round of one mode: latency percentiles, how many rows the calls returned, and the median
/// of each kind of call (calls take turns over `kinds`).
pub struct Round {
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Rows (results, slots) returned by all calls together.
    pub found: usize,
    /// The median latency of each kind of call.
    pub per_kind: Vec<Duration>,
}

/// Makes `count` calls one after the other, the `i`-th of kind `i % kinds`; each returns how many
/// rows it got.
pub async fn round<F, Fut>(count: usize, kinds: usize, mut call: F) -> Round
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = usize>,
{
    let kinds = kinds.max(1);
    let mut times = Vec::with_capacity(count);
    let mut by_kind: Vec<Vec<Duration>> = (0..kinds).map(|_| Vec::new()).collect();
    let mut found = 0;
    for i in 0..count {
        let started = Instant::now();
        found += call(i % kinds).await;
        let took = started.elapsed();
        times.push(took);
        by_kind[i % kinds].push(took);
    }
    times.sort();
    let per_kind = by_kind
        .iter_mut()
        .map(|t| {
            t.sort();
            t.get(t.len() / 2).copied().unwrap_or_default()
        })
        .collect();
    Round {
        p50: times.get(times.len() / 2).copied().unwrap_or_default(),
        p99: times
            .get(times.len() * 99 / 100)
            .copied()
            .unwrap_or_default(),
        found,
        per_kind,
    }
}

/// The median round (by p50) of each mode's interleaved rounds.
pub fn medians(results: &mut [Vec<Round>]) -> Vec<Round> {
    results
        .iter_mut()
        .map(|rounds| {
            rounds.sort_by_key(|r| r.p50);
            rounds.swap_remove(rounds.len() / 2)
        })
        .collect()
}

/// The table of modes: p50, p99, rows per call (`rows` names them, `decimals` of them) and both
/// percentiles as ratios of the `floor` row.
pub fn print_modes(
    modes: &[&str],
    rows: &[Round],
    floor: usize,
    calls: usize,
    per_call: &str,
    decimals: usize,
) {
    let floor = &rows[floor];
    println!("| mode | p50 | p99 | {per_call} | p50 vs bare SQL | p99 vs bare SQL |");
    println!("|---|---|---|---|---|---|");
    for (mode, row) in modes.iter().zip(rows) {
        println!(
            "| {mode} | {:.2} ms | {:.2} ms | {:.decimals$} | {:.2}x | {:.2}x |",
            ms(row.p50),
            ms(row.p99),
            row.found as f64 / calls as f64,
            ms(row.p50) / ms(floor.p50),
            ms(row.p99) / ms(floor.p99),
        );
    }
}

/// The median of each kind of call per mode: `header` names the label columns (`search`, or
/// `query | filter`), each of `labels` fills them for one kind.
pub fn print_kinds(header: &str, labels: &[String], modes: &[&str], rows: &[Round]) {
    let columns = header.matches('|').count() + 1;
    println!("| {header} | {} |", modes.join(" | "));
    println!("|{}{}", "---|".repeat(columns), "---|".repeat(modes.len()));
    for (i, label) in labels.iter().enumerate() {
        let cells: Vec<String> = rows
            .iter()
            .map(|row| format!("{:.2}", ms(row.per_kind[i])))
            .collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
}
