//! Recurring tasks: a durable consumer of the scheduler's `ScheduleTriggered` events creates the
//! task each firing of a task template asks for, as the schedule's owner, with the occurrence as
//! its origin. The occurrence id is the create's request id, so a redelivered firing creates
//! nothing more. Only the scheduler may publish on its subjects (the broker's permissions), which
//! is what lets a firing act for its owner without the owner's credential; the scheduler pauses
//! schedules whose owner may no longer write.

use std::future::Future;
use std::pin::Pin;

use async_nats::jetstream::Message;
use taskmesh_contracts::scheduler_v1::ScheduleTriggered;
use taskmesh_events::consumer::{HandleError, Handler};
use taskmesh_events::decode_as;
use taskmesh_mesh::CallContext;
use tonic::Code;

use crate::grpc::service::Tasks;

/// Durable consumer name.
pub const DURABLE: &str = "tasks-schedules";

/// Creates the tasks of schedule firings.
#[derive(Debug, Clone)]
pub struct ScheduledTasks {
    tasks: Tasks,
}

impl ScheduledTasks {
    /// Creates through `tasks`, the same commands the API uses.
    pub fn new(tasks: Tasks) -> Self {
        Self { tasks }
    }

    async fn create(&self, message: &Message) -> Result<(), HandleError> {
        let Some(firing) = decode_as::<ScheduleTriggered>(message) else {
            return Ok(());
        };
        let firing = firing
            .map_err(|e| HandleError::Retry(format!("undecodable ScheduleTriggered: {e}")))?;
        let mut context = CallContext::background();
        context.correlation_id.clone_from(&firing.occurrence_id);
        context.caller.clone_from(&firing.owner);
        match self.tasks.create_scheduled(&context, &firing).await {
            Ok(_) => Ok(()),
            Err(status) if matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded) => {
                Err(HandleError::Transient(status.message().to_owned()))
            }
            Err(status) => Err(HandleError::Retry(format!(
                "{}: {}",
                firing.schedule,
                status.message()
            ))),
        }
    }
}

impl Handler for ScheduledTasks {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>> {
        Box::pin(self.create(message))
    }
}
