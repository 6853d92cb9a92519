//! Background work of a service (consumers, workers, reloaders): started together, stopped together
//! at the drain, and reported one way. A task that ends before it was asked to stop is a failure
//! whatever it returned, because the service would otherwise run without it.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::{Id, JoinError, JoinSet};

use crate::error::{BoxError, KitError, chain};

/// The drain signal a background task watches.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// The underlying receiver (turns `true` at the drain), for APIs that take one.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.0.clone()
    }

    /// Completes when the drain begins.
    pub async fn stopped(&mut self) {
        // An error means the sender is gone, which only happens once the service is over.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

type Start = Box<dyn FnOnce(Stop) -> BoxFuture<'static, Result<(), BoxError>> + Send>;

/// A declared, not yet started, background task.
pub(crate) struct Background {
    name: String,
    start: Start,
}

impl Background {
    pub(crate) fn new<F>(name: String, start: F) -> Self
    where
        F: FnOnce(Stop) -> BoxFuture<'static, Result<(), BoxError>> + Send + 'static,
    {
        Self {
            name,
            start: Box::new(start),
        }
    }
}

/// Why a background task is over.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Ended {
    #[error("returned before the drain")]
    Returned,
    #[error("failed: {0}")]
    Failed(String),
    #[error("panicked")]
    Panicked,
    #[error("cancelled")]
    Cancelled,
}

/// Started background tasks.
pub(crate) struct Running {
    set: JoinSet<Result<(), BoxError>>,
    names: HashMap<Id, String>,
    stop: watch::Sender<bool>,
}

impl Running {
    /// Starts every task.
    pub(crate) fn start(tasks: Vec<Background>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut set = JoinSet::new();
        let mut names = HashMap::new();
        for task in tasks {
            let handle = set.spawn((task.start)(Stop(stopped.clone())));
            names.insert(handle.id(), task.name);
        }
        Self { set, names, stop }
    }

    /// Completes when a task ends before the drain, with its name and why; never when none does.
    pub(crate) async fn first_failure(&mut self) -> (String, Ended) {
        match self.set.join_next_with_id().await {
            Some(result) => self.describe(result),
            None => std::future::pending().await,
        }
    }

    /// Asks every task to stop and waits up to `grace` for all of them; what has not stopped by
    /// then is aborted. Every failure is logged; returns the first.
    pub(crate) async fn drain(mut self, grace: Duration) -> Option<KitError> {
        let _ = self.stop.send(true);
        let mut first = None;
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            match tokio::time::timeout_at(deadline, self.set.join_next_with_id()).await {
                Ok(Some(result)) => {
                    let (task, ended) = self.describe(result);
                    if !matches!(ended, Ended::Returned) {
                        tracing::error!(task = %task, "background task {ended}");
                        first.get_or_insert(KitError::Background {
                            task,
                            why: format!("{ended} during the drain"),
                        });
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    let left: Vec<&String> = self.names.values().collect();
                    tracing::warn!(tasks = ?left, "grace period over; aborting background tasks");
                    self.set.abort_all();
                    while self.set.join_next().await.is_some() {}
                    break;
                }
            }
        }
        first
    }

    fn describe(
        &mut self,
        result: Result<(Id, Result<(), BoxError>), JoinError>,
    ) -> (String, Ended) {
        let (id, ended) = match result {
            Ok((id, Ok(()))) => (id, Ended::Returned),
            Ok((id, Err(err))) => (id, Ended::Failed(chain(err.as_ref()))),
            Err(err) if err.is_panic() => (err.id(), Ended::Panicked),
            Err(err) => (err.id(), Ended::Cancelled),
        };
        let name = self.names.remove(&id).unwrap_or_else(|| "?".to_owned());
        (name, ended)
    }
}
