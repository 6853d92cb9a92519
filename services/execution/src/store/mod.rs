//! The execution database: executions with their lease, and attempts. Every state change commits
//! with its event in the outbox.

pub mod changes;
mod queries;

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::{PgConnection, PgPool};
use taskmesh_contracts::execution_v1::{
    Attempt, Execution, ExecutionCompleted, ExecutionFailed, ExecutionProgressed, ExecutionResult,
    ExecutionStarted, ExecutionState,
};
use taskmesh_contracts::tasks_v1::Job;
use taskmesh_events::{Outbox, OutgoingEvent};
use taskmesh_mesh::time::to_timestamp as ts;
use uuid::Uuid;

/// The durable consumer of `TASKS` that hands jobs to this store (the intake); a job
/// that fails for good is dead-lettered in its name, so that a replay reaches it again.
pub const INTAKE_DURABLE: &str = "execution-jobs";

pub(crate) const COLUMNS: &str = "id, name, task, task_version, job, state, progress_percent, progress_message, \
                       result, error, attempts_made, budget_start, max_attempts, cancel_requested, \
                       create_time, start_time, end_time, update_time, version, correlation_id";

/// One execution row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    /// Primary key.
    pub id: Uuid,
    /// Resource name.
    pub name: String,
    /// The task.
    pub task: String,
    /// The task version whose job this runs.
    pub task_version: i64,
    /// Encoded `Job`.
    pub job: Vec<u8>,
    /// `ExecutionState` number.
    pub state: i16,
    /// Progress of the current attempt.
    pub progress_percent: i32,
    /// What the current attempt does.
    pub progress_message: String,
    /// Encoded `ExecutionResult`.
    pub result: Option<Vec<u8>>,
    /// Why it failed.
    pub error: String,
    /// Attempts started, over all rounds.
    pub attempts_made: i32,
    /// `attempts_made` when the current round began (RetryExecution starts a round).
    pub budget_start: i32,
    /// Attempts per round.
    pub max_attempts: i32,
    /// A user asked to cancel.
    pub cancel_requested: bool,
    /// Timestamps.
    pub create_time: DateTime<Utc>,
    /// First attempt.
    pub start_time: Option<DateTime<Utc>>,
    /// Final state reached.
    pub end_time: Option<DateTime<Utc>>,
    /// Last change.
    pub update_time: DateTime<Utc>,
    /// Change counter.
    pub version: i64,
    /// Correlation id of the task event that asked for the work; every event carries it.
    pub correlation_id: String,
}

impl Row {
    /// The job.
    pub fn job(&self) -> Job {
        Job::decode(self.job.as_slice()).unwrap_or_default()
    }

    /// The execution as clients see it, with `attempts` (oldest first).
    fn to_proto(&self, attempts: Vec<Attempt>) -> Execution {
        Execution {
            name: self.name.clone(),
            task: self.task.clone(),
            // Readers never see a job's secrets, not even sealed.
            job: Some(crate::jobs::redacted(self.job())),
            state: i32::from(self.state),
            progress_percent: self.progress_percent,
            progress_message: self.progress_message.clone(),
            attempts,
            result: self
                .result
                .as_deref()
                .and_then(|bytes| ExecutionResult::decode(bytes).ok()),
            error: self.error.clone(),
            create_time: Some(ts(self.create_time)),
            start_time: self.start_time.map(ts),
            end_time: self.end_time.map(ts),
            update_time: Some(ts(self.update_time)),
            task_version: self.task_version,
            etag: format!("v{}", self.version),
        }
    }

    /// The state.
    pub fn state(&self) -> ExecutionState {
        ExecutionState::try_from(i32::from(self.state)).unwrap_or(ExecutionState::Unspecified)
    }
}

pub use crate::domain::is_final;

/// execution, number, start, end, error.
type AttemptRow = (Uuid, i32, DateTime<Utc>, Option<DateTime<Utc>>, String);

/// The advisory lock claims take turns on.
const CLAIM_LOCK: i64 = 0x7461_736b_6d65_7368; // "taskmesh"

/// Reads and changes executions.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    outbox: Outbox,
}

/// A new execution from a task event.
#[derive(Debug)]
pub struct NewExecution {
    /// The task name.
    pub task: String,
    /// Its id.
    pub task_id: Uuid,
    /// Its project.
    pub project: String,
    /// The version that set the job.
    pub task_version: i64,
    /// The job.
    pub job: Job,
    /// Correlation id of the event that caused it.
    pub correlation_id: String,
    /// The task event itself: subject, type, id and payload (kept for dead letters).
    pub source: SourceEvent,
}

/// The message an execution came from.
#[derive(Debug, Clone, Default)]
pub struct SourceEvent {
    /// NATS subject.
    pub subject: String,
    /// Protobuf type.
    pub event_type: String,
    /// Event id.
    pub event_id: String,
    /// Encoded payload.
    pub payload: Vec<u8>,
}

impl Store {
    /// A store over `pool` writing events through `outbox`.
    pub fn new(pool: PgPool, outbox: Outbox) -> Self {
        Self { pool, outbox }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The outbox.
    pub(crate) fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The execution with its attempts as clients see it.
    pub async fn to_proto(
        &self,
        conn: &mut PgConnection,
        row: &Row,
    ) -> Result<Execution, sqlx::Error> {
        let mut protos = self.to_protos(conn, std::slice::from_ref(row)).await?;
        Ok(protos.remove(0))
    }

    /// Several executions with their attempts, read in one query.
    pub async fn to_protos(
        &self,
        conn: &mut PgConnection,
        rows: &[Row],
    ) -> Result<Vec<Execution>, sqlx::Error> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let attempts: Vec<AttemptRow> = sqlx::query_as(
            "SELECT execution_id, number, start_time, end_time, error FROM attempts \
             WHERE execution_id = ANY($1) ORDER BY execution_id, number",
        )
        .bind(&ids)
        .fetch_all(conn)
        .await?;
        let mut by_execution: std::collections::HashMap<Uuid, Vec<Attempt>> =
            std::collections::HashMap::new();
        for (execution_id, number, start, end, error) in attempts {
            by_execution.entry(execution_id).or_default().push(Attempt {
                number,
                start_time: Some(ts(start)),
                end_time: end.map(ts),
                error,
            });
        }
        Ok(rows
            .iter()
            .map(|row| row.to_proto(by_execution.remove(&row.id).unwrap_or_default()))
            .collect())
    }

    pub(crate) async fn emit(
        &self,
        conn: &mut PgConnection,
        row: &Row,
        kind: EventKind,
    ) -> Result<Execution, sqlx::Error> {
        let execution = self.to_proto(conn, row).await?;
        let resource = &row.name;
        let execution_in = Some(execution.clone());
        let mut event = match kind {
            EventKind::Started => OutgoingEvent::new(
                resource,
                &ExecutionStarted {
                    execution: execution_in,
                },
            ),
            EventKind::Progressed => OutgoingEvent::new(
                resource,
                &ExecutionProgressed {
                    execution: execution_in,
                },
            ),
            EventKind::Completed => OutgoingEvent::new(
                resource,
                &ExecutionCompleted {
                    execution: execution_in,
                },
            ),
            EventKind::Failed => OutgoingEvent::new(
                resource,
                &ExecutionFailed {
                    execution: execution_in,
                },
            ),
        };
        row.correlation_id.clone_into(&mut event.correlation_id);
        self.outbox.enqueue(conn, &event).await?;
        Ok(execution)
    }

    /// Creates the execution of a task version's job; nothing when it exists already.
    pub async fn create(&self, new: NewExecution) -> Result<bool, sqlx::Error> {
        let max_attempts = if new.job.max_attempts == 0 {
            3
        } else {
            new.job.max_attempts
        };
        let id = Uuid::now_v7();
        let name = format!("{}/executions/{}", new.task, id.simple());
        let inserted = sqlx::query(
            "INSERT INTO executions (id, name, project_id, task, task_id, task_version, job, state, \
             max_attempts, next_attempt_at, create_time, update_time, source_subject, \
             source_event_type, source_event_id, source_payload, correlation_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now(), now(), $10, $11, $12, $13, $14) \
             ON CONFLICT (task_id, task_version) DO NOTHING",
        )
        .bind(id)
        .bind(&name)
        .bind(&new.project)
        .bind(&new.task)
        .bind(new.task_id)
        .bind(new.task_version)
        .bind(new.job.encode_to_vec())
        .bind(ExecutionState::Pending as i16)
        .bind(max_attempts)
        .bind(&new.source.subject)
        .bind(&new.source.event_type)
        .bind(&new.source.event_id)
        .bind(&new.source.payload)
        .bind(&new.correlation_id)
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// A replayed dead letter asks to run a failed execution of (task, version) again: it starts a
    /// new round of attempts. `false` when there is nothing failed to rerun.
    pub async fn rerun(&self, task_id: Uuid, task_version: i64) -> Result<bool, sqlx::Error> {
        let updated = sqlx::query(
            "UPDATE executions SET state = $3, budget_start = attempts_made, cancel_requested = false, \
             error = '', end_time = NULL, next_attempt_at = now(), progress_percent = 0, \
             progress_message = 'replayed from the dead-letter stream', update_time = now(), \
             version = version + 1 WHERE task_id = $1 AND task_version = $2 AND state = $4",
        )
        .bind(task_id)
        .bind(task_version)
        .bind(ExecutionState::Pending as i16)
        .bind(ExecutionState::Failed as i16)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Claims one due execution for `worker`: a pending one whose time has come, or a running one
    /// whose lease expired (its worker died). Starts its next attempt and publishes
    /// ExecutionStarted, all in one transaction.
    pub async fn claim(
        &self,
        worker: &str,
        lease: std::time::Duration,
        per_project: usize,
    ) -> Result<Option<Row>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Claims take turns (a short transaction each), so that the per-project count below is
        // exact across every worker of every process.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CLAIM_LOCK)
            .execute(&mut *tx)
            .await?;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE executions SET state = $2, lease_owner = $1, \
             lease_until = now() + make_interval(secs => $3::double precision / 1000), \
             attempts_made = attempts_made + 1, start_time = coalesce(start_time, now()), \
             progress_percent = 0, progress_message = 'starting', update_time = now(), version = version + 1 \
             WHERE id = (SELECT id FROM executions \
                         WHERE ((state = $4 AND next_attempt_at <= now() AND NOT cancel_requested) \
                            OR (state = $2 AND lease_until < now())) \
                           AND project_id NOT IN (SELECT project_id FROM executions \
                                WHERE state = $2 AND lease_until >= now() \
                                GROUP BY project_id HAVING count(*) >= $5) \
                         ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING {COLUMNS}"
        ))
        .bind(worker)
        .bind(ExecutionState::Running as i16)
        .bind(lease_ms)
        .bind(ExecutionState::Pending as i16)
        .bind(i64::try_from(per_project).unwrap_or(i64::MAX))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE attempts SET end_time = now(), error = 'the worker stopped answering (lease expired)' \
             WHERE execution_id = $1 AND end_time IS NULL",
        )
        .bind(row.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO attempts (execution_id, number, worker, start_time) VALUES ($1, $2, $3, now())",
        )
        .bind(row.id)
        .bind(row.attempts_made)
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        self.emit(&mut tx, &row, EventKind::Started).await?;
        tx.commit().await?;
        self.outbox.wake();
        Ok(Some(row))
    }

    /// Renews the lease: `Some(cancel requested)`, or `None` when this worker no longer holds it.
    pub async fn heartbeat(
        &self,
        id: Uuid,
        worker: &str,
        lease: std::time::Duration,
    ) -> Result<Option<bool>, sqlx::Error> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let renewed: Option<(bool,)> = sqlx::query_as(
            "UPDATE executions SET lease_until = now() + make_interval(secs => $3::double precision / 1000) \
             WHERE id = $1 AND lease_owner = $2 AND state = $4 RETURNING cancel_requested",
        )
        .bind(id)
        .bind(worker)
        .bind(lease_ms)
        .bind(ExecutionState::Running as i16)
        .fetch_optional(&self.pool)
        .await?;
        Ok(renewed.map(|(cancel,)| cancel))
    }

    /// Records progress of the running attempt.
    pub async fn progress(
        &self,
        id: Uuid,
        worker: &str,
        percent: i32,
        message: &str,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE executions SET progress_percent = $3, progress_message = $4, update_time = now(), \
             version = version + 1 WHERE id = $1 AND lease_owner = $2 AND state = $5 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(worker)
        .bind(percent)
        .bind(message)
        .bind(ExecutionState::Running as i16)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = row {
            self.emit(&mut tx, &row, EventKind::Progressed).await?;
        }
        tx.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Ends the running attempt of `id` if `worker` still owns it. `retry_at` schedules another
    /// attempt; otherwise the execution reaches `state`.
    pub async fn finish(
        &self,
        id: Uuid,
        worker: &str,
        outcome: Outcome,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let (state, error, result, retry_in) = match &outcome {
            Outcome::Succeeded(result) => (
                ExecutionState::Succeeded,
                String::new(),
                Some(result.encode_to_vec()),
                None,
            ),
            Outcome::Failed { error, retry_in } => (
                if retry_in.is_some() {
                    ExecutionState::Pending
                } else {
                    ExecutionState::Failed
                },
                error.clone(),
                None,
                *retry_in,
            ),
            Outcome::Cancelled => (
                ExecutionState::Cancelled,
                "cancelled".to_owned(),
                None,
                None,
            ),
        };
        let retry_ms = retry_in.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE executions SET state = $3, error = $4, result = $5, lease_owner = NULL, lease_until = NULL, \
             next_attempt_at = now() + make_interval(secs => $6::double precision / 1000), \
             progress_percent = CASE WHEN $3 = {succeeded} THEN 100 ELSE progress_percent END, \
             progress_message = $7, \
             end_time = CASE WHEN $8 THEN now() ELSE NULL END, update_time = now(), version = version + 1 \
             WHERE id = $1 AND lease_owner = $2 AND state = {running} RETURNING {COLUMNS}",
            succeeded = ExecutionState::Succeeded as i16,
            running = ExecutionState::Running as i16,
        ))
        .bind(id)
        .bind(worker)
        .bind(state as i16)
        .bind(&error)
        .bind(result)
        .bind(retry_ms)
        .bind(match &outcome {
            Outcome::Succeeded(_) => "done".to_owned(),
            Outcome::Failed { retry_in: Some(d), .. } => format!("retrying in {} ms", d.as_millis()),
            Outcome::Failed { .. } => "failed".to_owned(),
            Outcome::Cancelled => "cancelled".to_owned(),
        })
        .bind(is_final(state))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            // Lost the lease meanwhile: another worker owns the execution now.
            tracing::warn!(%id, worker, "attempt ended after its lease was lost; result dropped");
            return Ok(());
        };
        sqlx::query(
            "UPDATE attempts SET end_time = now(), error = $2 WHERE execution_id = $1 AND number = $3",
        )
        .bind(id)
        .bind(&error)
        .bind(row.attempts_made)
        .execute(&mut *tx)
        .await?;
        let kind = match state {
            ExecutionState::Succeeded => Some(EventKind::Completed),
            ExecutionState::Failed | ExecutionState::Cancelled => Some(EventKind::Failed),
            _ => Some(EventKind::Progressed),
        };
        if let Some(kind) = kind {
            self.emit(&mut tx, &row, kind).await?;
        }
        if state == ExecutionState::Failed {
            // Failed for good: dead-letter the task event that asked for the work, so that an
            // operator can see it and replay it (which runs the job again).
            let source: (String, String, String, Vec<u8>) = sqlx::query_as(
                "SELECT source_subject, source_event_type, source_event_id, source_payload \
                 FROM executions WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            if !source.0.is_empty() {
                let letter = taskmesh_events::dead_letters::outgoing(
                    INTAKE_DURABLE,
                    &source.0,
                    &source.1,
                    &source.2,
                    &row.name,
                    source.3,
                    &error,
                    i64::from(row.attempts_made),
                );
                self.outbox.enqueue(&mut tx, &letter).await?;
            }
        }
        tx.commit().await?;
        self.outbox.wake();
        Ok(())
    }
}

/// Which event a change publishes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EventKind {
    Started,
    Progressed,
    Completed,
    Failed,
}

/// How an attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// It worked.
    Succeeded(ExecutionResult),
    /// It failed; `retry_in` schedules the next attempt, `None` makes the failure final.
    Failed {
        /// Why.
        error: String,
        /// When to try again.
        retry_in: Option<std::time::Duration>,
    },
    /// A user cancelled it.
    Cancelled,
}
