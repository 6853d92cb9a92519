//! Failed sign-ins per account: after `max` wrong passwords for one account within `window`, that
//! account's sign-ins are refused until the oldest failure leaves the window, whoever tries and from
//! wherever (the gateway limits each client address separately). Successful sign-ins count nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Accounts remembered at most; past this the ones without recent failures are forgotten.
const MAX_ACCOUNTS: usize = 100_000;

/// See the module documentation.
#[derive(Debug)]
pub struct FailedSignIns {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailedSignIns {
    /// At most `max` failures per account within `window`.
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max: max.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// How long `account` must wait before trying again, if it must.
    pub fn wait(&self, account: &str) -> Option<Duration> {
        let mut failures = self.failures.lock().ok()?;
        let recent = failures.get_mut(account)?;
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|at| now.duration_since(*at) >= self.window)
        {
            recent.pop_front();
        }
        if recent.len() < self.max {
            return None;
        }
        recent
            .front()
            .map(|oldest| self.window.saturating_sub(now.duration_since(*oldest)))
    }

    /// Records a wrong password for `account`.
    pub fn failed(&self, account: &str) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() >= MAX_ACCOUNTS {
            let window = self.window;
            failures.retain(|_, recent| recent.back().is_some_and(|at| at.elapsed() < window));
        }
        let recent = failures.entry(account.to_owned()).or_default();
        recent.push_back(Instant::now());
        while recent.len() > self.max {
            recent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_waits_after_too_many_failures_and_others_do_not() {
        let attempts = FailedSignIns::new(3, Duration::from_secs(60));
        for _ in 0..2 {
            attempts.failed("ada@example.org");
        }
        assert!(attempts.wait("ada@example.org").is_none());
        attempts.failed("ada@example.org");
        let wait = attempts.wait("ada@example.org").expect("limited");
        assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(60));
        assert!(attempts.wait("bob@example.org").is_none());
    }

    #[test]
    fn failures_leave_the_window() {
        let attempts = FailedSignIns::new(1, Duration::from_millis(20));
        attempts.failed("ada@example.org");
        assert!(attempts.wait("ada@example.org").is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(attempts.wait("ada@example.org").is_none());
    }
}
