//! Workers: each claims due executions (`FOR UPDATE SKIP LOCKED` through a lease), runs one attempt
//! under the job's timeout while renewing the lease, and records the outcome. Cancellation and a
//! lost lease stop the attempt at the next heartbeat.

use std::sync::Arc;
use std::time::Duration;

use taskmesh_contracts::tasks_v1::Job;
use tokio::sync::watch;

use taskmesh_mesh::egress::Egress;
use taskmesh_mesh::sealed::Sealer;

use crate::jobs;
use crate::store::{Outcome, Row, Store};

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Executions run at once by this process.
    pub concurrency: usize,
    /// How long a lease lasts without renewal.
    pub lease: Duration,
    /// How often an idle worker looks for work.
    pub poll: Duration,
    /// Executions of one project running at once.
    pub per_project: usize,
    /// Unique name of this process (lease owner).
    pub id: String,
}

/// `concurrency` workers sharing one egress client; each runs until its stop signal turns true.
/// Each opens the sealed secrets of a job with `sealer` just before its attempt.
pub(crate) fn workers(
    store: &Store,
    config: &WorkerConfig,
    egress: &Egress,
    sealer: &Sealer,
) -> Vec<Worker> {
    (0..config.concurrency)
        .map(|n| Worker {
            store: store.clone(),
            egress: egress.clone(),
            sealer: sealer.clone(),
            id: format!("{}/{n}", config.id),
            lease: config.lease,
            poll: config.poll,
            per_project: config.per_project,
        })
        .collect()
}

/// Why an attempt stopped before its job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Halt {
    /// A user cancelled the execution.
    Cancelled,
    /// The lease is another worker's now, or may be: the attempt must not go on beside theirs.
    LeaseLost,
}

/// One worker: claims and runs one execution at a time.
pub(crate) struct Worker {
    store: Store,
    egress: Egress,
    sealer: Sealer,
    id: String,
    lease: Duration,
    poll: Duration,
    per_project: usize,
}

impl Worker {
    /// This worker's lease-owner name.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            match self
                .store
                .claim(&self.id, self.lease, self.per_project)
                .await
            {
                Ok(Some(row)) => self.attempt(row).await,
                Ok(None) => {
                    tokio::select! {
                        () = tokio::time::sleep(self.poll) => {}
                        _ = stop.changed() => return,
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "claiming work failed");
                    tokio::time::sleep(self.poll * 4).await;
                }
            }
        }
    }

    async fn attempt(&self, row: Row) {
        let job = row.job();
        let timeout = job
            .timeout
            .and_then(|d| Duration::try_from(d).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(30));
        tracing::info!(execution = %row.name, attempt = row.attempts_made, worker = %self.id, "attempt started");
        let (stopped_tx, mut stopped) = watch::channel(None::<Halt>);
        let heartbeat = {
            let store = self.store.clone();
            let id = self.id.clone();
            let lease = self.lease;
            let execution = row.id;
            tokio::spawn(async move {
                let mut renewed = tokio::time::Instant::now();
                loop {
                    tokio::time::sleep(lease / 3).await;
                    // A renewal that cannot finish before the next is due counts as failed.
                    let renewal =
                        tokio::time::timeout(lease / 3, store.heartbeat(execution, &id, lease))
                            .await
                            .unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut));
                    match renewal {
                        Ok(Some(false)) => renewed = tokio::time::Instant::now(),
                        // Cancelled, or the lease went to another worker: stop the attempt.
                        Ok(Some(true)) => {
                            let _ = stopped_tx.send(Some(Halt::Cancelled));
                            return;
                        }
                        Ok(None) => {
                            let _ = stopped_tx.send(Some(Halt::LeaseLost));
                            return;
                        }
                        // Not renewed: once the lease may have run out before the next try,
                        // another worker may take the execution, so this attempt stops first.
                        Err(err) if renewed.elapsed() + lease / 3 >= lease => {
                            tracing::warn!(error = %err, "lease not renewed in time; abandoning the attempt");
                            let _ = stopped_tx.send(Some(Halt::LeaseLost));
                            return;
                        }
                        Err(err) => tracing::warn!(error = %err, "heartbeat failed"),
                    }
                }
            })
        };
        let store = Arc::new(self.store.clone());
        let progress = {
            let store = Arc::clone(&store);
            let (id, worker) = (row.id, self.id.clone());
            async move |percent: i32, message: &str| {
                if let Err(err) = store.progress(id, &worker, percent, message).await {
                    tracing::warn!(error = %err, "progress not recorded");
                }
            }
        };
        // The job's secrets are opened here only, for this attempt, and never stored opened.
        let run = async {
            let opened = jobs::opened(&self.sealer, &row.task, &job)?;
            jobs::run(&self.egress, &opened, progress).await
        };
        // `None`: the lease is lost, and with it the say over this execution.
        let outcome = tokio::select! {
            result = tokio::time::timeout(timeout, run) => Some(match result {
                Ok(Ok(result)) => Outcome::Succeeded(result),
                Ok(Err(err)) => self.failed(&row, &job, err.to_string(), err.is_retryable()),
                Err(_) => self.failed(&row, &job, format!("the attempt took longer than {timeout:?}"), true),
            }),
            halt = stopped.wait_for(Option::is_some) => match halt.ok().and_then(|h| *h) {
                Some(Halt::LeaseLost) => None,
                _ => Some(Outcome::Cancelled),
            },
        };
        heartbeat.abort();
        let Some(outcome) = outcome else {
            // The lease's next owner (or its expiry) decides what happens to the execution.
            tracing::warn!(execution = %row.name, worker = %self.id, "attempt abandoned: lease lost");
            return;
        };
        let cancelled_by_user = matches!(outcome, Outcome::Cancelled);
        if let Err(err) = self.store.finish(row.id, &self.id, outcome).await {
            tracing::error!(error = %err, execution = %row.name, "cannot record the attempt; the lease will expire and it runs again");
        }
        tracing::info!(execution = %row.name, cancelled = cancelled_by_user, "attempt ended");
    }

    /// A failed attempt; retried while attempts are left, unless `retryable` is false (a refused
    /// destination stays refused).
    fn failed(&self, row: &Row, job: &Job, error: String, retryable: bool) -> Outcome {
        let used = row.attempts_made - row.budget_start;
        let retry_in =
            (retryable && used < row.max_attempts).then(|| crate::domain::backoff(job, used));
        Outcome::Failed { error, retry_in }
    }
}
