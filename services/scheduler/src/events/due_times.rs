//! What the scheduler knows of tasks: a durable consumer of the tasks service's events keeps each
//! task's title, assignee, due time and whether it is done or deleted (`task_due`), and re-arms the
//! task's reminders and overdue check with every change. Events of a task arrive in order; one
//! older than what was applied changes nothing.

use std::future::Future;
use std::pin::Pin;

use async_nats::jetstream::Message;
use taskmesh_contracts::tasks_v1::{
    EventContext, Status, TaskCompleted, TaskCreated, TaskDeleted, TaskMoved, TaskReopened,
    TaskUndeleted, TaskUpdated,
};
use taskmesh_events::consumer::{HandleError, Handler};
use taskmesh_events::decode_as;
use taskmesh_mesh::time::from_timestamp;

use super::{project_of, undecodable};
use crate::store::Store;
use crate::store::reminders::TaskFacts;

/// Durable consumer name.
pub const DURABLE: &str = "scheduler-due-times";

/// Keeps `task_due` and the alarms of each task.
#[derive(Debug, Clone)]
pub struct DueTimes {
    store: Store,
}

fn facts(context: Option<&EventContext>) -> TaskFacts {
    let context = context.cloned().unwrap_or_default();
    TaskFacts {
        project: project_of(&context.task).to_owned(),
        task: context.task,
        version: context.version,
        ..TaskFacts::default()
    }
}

impl DueTimes {
    /// A consumer writing through `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn apply(&self, message: &Message) -> Result<(), HandleError> {
        let facts = if let Some(event) = decode_as::<TaskCreated>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            TaskFacts {
                title: Some(event.title),
                assignee: Some(event.assignee),
                due_time: Some(from_timestamp(event.due_time)),
                done: Some(event.status == Status::Done as i32),
                deleted: Some(false),
                ..facts(event.context.as_ref())
            }
        } else if let Some(event) = decode_as::<TaskUpdated>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            let changes = event.changes.unwrap_or_default();
            let paths = event.update_mask.map(|m| m.paths).unwrap_or_default();
            let has = |path: &str| paths.iter().any(|p| p == path);
            TaskFacts {
                title: has("title").then_some(changes.title),
                assignee: has("assignee").then_some(changes.assignee),
                due_time: has("due_time").then(|| from_timestamp(changes.due_time)),
                ..facts(event.context.as_ref())
            }
        } else if let Some(event) = decode_as::<TaskMoved>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            TaskFacts {
                done: Some(event.status == Status::Done as i32),
                ..facts(event.context.as_ref())
            }
        } else if let Some(event) = decode_as::<TaskCompleted>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            TaskFacts {
                done: Some(true),
                ..facts(event.context.as_ref())
            }
        } else if let Some(event) = decode_as::<TaskReopened>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            TaskFacts {
                done: Some(event.status == Status::Done as i32),
                ..facts(event.context.as_ref())
            }
        } else if let Some(event) = decode_as::<TaskDeleted>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            TaskFacts {
                deleted: Some(true),
                ..facts(event.context.as_ref())
            }
        } else if let Some(event) = decode_as::<TaskUndeleted>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            TaskFacts {
                deleted: Some(false),
                ..facts(event.context.as_ref())
            }
        } else {
            // Comments, work logs: nothing reminders depend on.
            return Ok(());
        };
        if facts.task.is_empty() {
            return Err(HandleError::Retry("task event without its task".to_owned()));
        }
        self.store.apply_task_facts(&facts).await?;
        Ok(())
    }
}

impl Handler for DueTimes {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>> {
        Box::pin(self.apply(message))
    }
}
