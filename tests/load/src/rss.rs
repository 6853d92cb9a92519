//! Resident memory of the platform's processes (`make up` writes their pids to
//! `.taskmesh/run/<name>.pid`): read idle before the run, then sampled under load for the peak.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The processes of the platform.
pub const PROCESSES: &[&str] = &[
    "identity",
    "projects",
    "tasks",
    "execution",
    "scheduler",
    "notifications",
    "gateway",
];

/// A process's resident set in KiB now (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The pids of the platform's processes found under `run` (the stack's `.taskmesh/run`).
pub fn pids(run: &Path) -> BTreeMap<String, u32> {
    PROCESSES
        .iter()
        .filter_map(|name| {
            let pid = std::fs::read_to_string(run.join(format!("{name}.pid"))).ok()?;
            Some(((*name).to_owned(), pid.trim().parse().ok()?))
        })
        .collect()
}

/// The resident set of each process now, in KiB.
pub fn now(pids: &BTreeMap<String, u32>) -> BTreeMap<String, u64> {
    pids.iter()
        .filter_map(|(name, pid)| Some((name.clone(), rss_kib(*pid)?)))
        .collect()
}

/// Samples every 200 ms until dropped; [`peaks`](Self::peaks) tells the highest seen.
pub struct Sampler {
    peaks: Arc<Mutex<BTreeMap<String, u64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling `pids`.
    pub fn start(pids: BTreeMap<String, u32>) -> Self {
        let peaks = Arc::new(Mutex::new(BTreeMap::new()));
        let seen = Arc::clone(&peaks);
        let task = tokio::spawn(async move {
            loop {
                for (name, kib) in now(&pids) {
                    let mut peaks = seen.lock().expect("lock");
                    let peak = peaks.entry(name).or_insert(0);
                    *peak = (*peak).max(kib);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { peaks, task }
    }

    /// The highest resident set seen per process, in KiB.
    pub fn peaks(&self) -> BTreeMap<String, u64> {
        self.peaks.lock().expect("lock").clone()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_set_of_this_process_is_read() {
        let kib = rss_kib(std::process::id()).expect("VmRSS");
        assert!(kib > 100, "{kib} KiB");
    }
}
