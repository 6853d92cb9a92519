//! The latest execution state of each task's job: a durable consumer of the `EXECUTION` stream
//! keeps one row per task (newest change wins, older redeliveries are ignored), and reads merge it
//! into the tasks they return.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use async_nats::jetstream::Message;
use chrono::{DateTime, Utc};
use prost::Message as _;
use sqlx::PgPool;
use taskmesh_contracts::execution_v1::{
    Execution, ExecutionCompleted, ExecutionFailed, ExecutionProgressed, ExecutionStarted,
};
use taskmesh_contracts::tasks_v1::{JobStatus, Task};
use taskmesh_events::consumer::{HandleError, Handler};
use taskmesh_events::decode_as;
use uuid::Uuid;

use crate::domain::names::TaskName;
use crate::store::to_time;

/// Durable consumer name.
pub const DURABLE: &str = "tasks-job-status";

/// Applies execution events to `task_job_status`.
#[derive(Debug, Clone)]
pub struct JobStatusProjector {
    pool: PgPool,
}

impl JobStatusProjector {
    /// A projector writing into `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn project(&self, message: &Message) -> Result<(), HandleError> {
        let undecodable = |e: prost::DecodeError| HandleError::Retry(format!("undecodable: {e}"));
        let execution: Option<Execution> =
            if let Some(event) = decode_as::<ExecutionStarted>(message) {
                event.map_err(undecodable)?.execution
            } else if let Some(event) = decode_as::<ExecutionProgressed>(message) {
                event.map_err(undecodable)?.execution
            } else if let Some(event) = decode_as::<ExecutionCompleted>(message) {
                event.map_err(undecodable)?.execution
            } else if let Some(event) = decode_as::<ExecutionFailed>(message) {
                event.map_err(undecodable)?.execution
            } else {
                None
            };
        let Some(execution) = execution else {
            return Ok(());
        };
        let Ok(task) = TaskName::parse("task", &execution.task) else {
            return Ok(());
        };
        let status = JobStatus {
            execution: execution.name.clone(),
            state: execution.state,
            progress_percent: execution.progress_percent,
            error: execution.error.clone(),
            update_time: execution.update_time,
        };
        let time = to_time(execution.update_time).unwrap_or_else(Utc::now);
        sqlx::query(
            "INSERT INTO task_job_status (task_id, status, update_time) VALUES ($1, $2, $3) \
             ON CONFLICT (task_id) DO UPDATE SET status = EXCLUDED.status, update_time = EXCLUDED.update_time \
             WHERE task_job_status.update_time <= EXCLUDED.update_time",
        )
        .bind(task.task)
        .bind(status.encode_to_vec())
        .bind(time)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl Handler for JobStatusProjector {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>> {
        Box::pin(self.project(message))
    }
}

/// Sets `job_status` on each task from the stored statuses.
pub async fn merge(pool: &PgPool, tasks: &mut [Task]) -> Result<(), crate::error::Error> {
    let ids: Vec<Uuid> = tasks
        .iter()
        .filter_map(|t| TaskName::parse("task", &t.name).ok().map(|n| n.task))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let rows: Vec<(Uuid, Vec<u8>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT task_id, status, update_time FROM task_job_status WHERE task_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let statuses: HashMap<Uuid, JobStatus> = rows
        .into_iter()
        .filter_map(|(id, bytes, _)| JobStatus::decode(bytes.as_slice()).ok().map(|s| (id, s)))
        .collect();
    for task in tasks {
        if let Ok(name) = TaskName::parse("task", &task.name) {
            task.job_status = statuses.get(&name.task).cloned();
        }
    }
    Ok(())
}
