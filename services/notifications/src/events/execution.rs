//! Notifications of jobs that ended, from the execution service's events: a failure (after its
//! last attempt) always, a success for those who turned it on. A cancelled execution tells nobody:
//! someone cancelled it on purpose.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_nats::jetstream::Message;
use taskmesh_contracts::execution_v1::{ExecutionCompleted, ExecutionFailed, ExecutionState};
use taskmesh_events::consumer::{HandleError, Handler};
use taskmesh_events::decode_as;

use super::{Deliverer, too_early, undecodable};
use crate::domain::rules::{self, JobOutcome};
use crate::store::facts;

/// Durable consumer name.
pub const DURABLE: &str = "notifications-execution";

/// Consumes `EXECUTION`.
#[derive(Debug, Clone)]
pub struct ExecutionEvents {
    deliverer: Deliverer,
}

impl ExecutionEvents {
    /// A consumer making notifications through `deliverer`.
    pub fn new(deliverer: Deliverer) -> Self {
        Self { deliverer }
    }

    async fn apply(&self, message: &Message) -> Result<(), HandleError> {
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
        let Some(mut claimed) = self.deliverer.claim(DURABLE, message).await? else {
            return Ok(());
        };
        // The task's creation comes on another stream; until it is here, whose job this is is
        // not known.
        let Some(task) = facts::task(claimed.conn(), &execution.task).await? else {
            return Err(too_early(
                message,
                Duration::from_secs(1),
                format!("{} is not known yet", execution.task),
            ));
        };
        let drafts: Vec<_> = rules::job_ended(&outcome, &execution.name, &task.facts)
            .into_iter()
            .collect();
        self.deliverer.finish(claimed, &drafts).await
    }
}

impl Handler for ExecutionEvents {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>> {
        Box::pin(self.apply(message))
    }
}
