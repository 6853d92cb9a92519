//! Notifications of jobs that ended, from the execution service's events: a failure (after its
//! last attempt) always, a success for those who turned it on. A cancelled execution tells nobody:
//! someone cancelled it on purpose.

use std::time::Duration;

use async_nats::jetstream::Message;
use taskmesh_contracts::execution_v1::{ExecutionCompleted, ExecutionFailed, ExecutionState};
use taskmesh_events::consumer::{HandleError, Handling};
use taskmesh_events::decode_as;

use super::{Batch, Rule, too_early, undecodable};
use crate::domain::rules::{self, JobOutcome};
use crate::store::facts;

/// Consumes `EXECUTION`.
#[derive(Debug, Clone)]
pub struct ExecutionEvents;

impl ExecutionEvents {
    async fn handle_event(&self, batch: &mut Batch, message: &Message) -> Result<(), HandleError> {
        let (execution, outcome) = if let Some(event) = decode_as::<ExecutionFailed>(message) {
            let execution = event
                .map_err(|e| undecodable(&e))?
                .execution
                .unwrap_or_default();
            if execution.state() == ExecutionState::Cancelled {
                return Ok(());
            }
            let error = execution.error.clone();
            (execution, JobOutcome::Failed(error))
        } else if let Some(event) = decode_as::<ExecutionCompleted>(message) {
            let execution = event
                .map_err(|e| undecodable(&e))?
                .execution
                .unwrap_or_default();
            (execution, JobOutcome::Succeeded)
        } else {
            return Ok(());
        };
        let Some(event_id) = batch.claim(message)? else {
            return Ok(());
        };
        // The task's creation comes on another stream; until it is here, whose job this is is
        // not known.
        let Some(task) = facts::task(batch.conn(), &execution.task).await? else {
            return Err(too_early(
                message,
                Duration::from_secs(1),
                format!("{} is not known yet", execution.task),
            ));
        };
        let drafts: Vec<_> = rules::job_ended(&outcome, &execution.name, &task.facts)
            .into_iter()
            .collect();
        batch.notify(&event_id, &drafts);
        Ok(())
    }
}

impl Rule for ExecutionEvents {
    const CONTEXT: &'static str = "execution";
    const DURABLE: &'static str = "notifications-execution";

    fn apply<'a>(&'a self, batch: &'a mut Batch, message: &'a Message) -> Handling<'a> {
        Box::pin(self.handle_event(batch, message))
    }
}
