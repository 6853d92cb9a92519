//! What the bookings service learns from the tasks service's events: the tasks with due times
//! each user is assigned, for the user's calendar feed (`user_tasks`).

use async_nats::jetstream::Message;
use taskmesh_contracts::tasks_v1::{
    EventContext, Status, TaskCompleted, TaskCreated, TaskDeleted, TaskMoved, TaskReopened,
    TaskUndeleted, TaskUpdated,
};
use taskmesh_events::consumer::{HandleError, Handler, Handling};
use taskmesh_events::decode_as;
use taskmesh_mesh::time::from_timestamp;

use crate::store::Store;
use crate::store::tasks::TaskChange;

/// Durable consumer of `TASKS`.
pub const TASKS_DURABLE: &str = "bookings-tasks";

/// Consumes `TASKS`.
#[derive(Debug, Clone)]
pub struct TaskEvents {
    store: Store,
}

fn undecodable(e: &prost::DecodeError) -> HandleError {
    HandleError::Retry(format!("undecodable: {e}"))
}

/// The change a task event makes to the read model, with the task's context.
fn change(message: &Message) -> Result<Option<(EventContext, TaskChange)>, HandleError> {
    let done = |status: i32| Some(status == Status::Done as i32);
    if let Some(event) = decode_as::<TaskCreated>(message) {
        let event = event.map_err(|e| undecodable(&e))?;
        let change = TaskChange {
            title: Some(event.title),
            assignee: Some(event.assignee),
            due_time: Some(from_timestamp(event.due_time)),
            done: done(event.status),
            deleted: Some(false),
        };
        return Ok(Some((event.context.unwrap_or_default(), change)));
    }
    if let Some(event) = decode_as::<TaskUpdated>(message) {
        let event = event.map_err(|e| undecodable(&e))?;
        let task = event.changes.unwrap_or_default();
        let paths = event.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut change = TaskChange::default();
        for path in paths {
            match path.as_str() {
                "title" => change.title = Some(task.title.clone()),
                "assignee" => change.assignee = Some(task.assignee.clone()),
                "due_time" => change.due_time = Some(from_timestamp(task.due_time)),
                _ => {}
            }
        }
        return Ok(Some((event.context.unwrap_or_default(), change)));
    }
    let state = |done: Option<bool>, deleted: Option<bool>| TaskChange {
        done,
        deleted,
        ..TaskChange::default()
    };
    if let Some(event) = decode_as::<TaskMoved>(message) {
        let event = event.map_err(|e| undecodable(&e))?;
        return Ok(Some((
            event.context.unwrap_or_default(),
            state(done(event.status), None),
        )));
    }
    if let Some(event) = decode_as::<TaskCompleted>(message) {
        let event = event.map_err(|e| undecodable(&e))?;
        return Ok(Some((
            event.context.unwrap_or_default(),
            state(Some(true), None),
        )));
    }
    if let Some(event) = decode_as::<TaskReopened>(message) {
        let event = event.map_err(|e| undecodable(&e))?;
        return Ok(Some((
            event.context.unwrap_or_default(),
            state(Some(false), None),
        )));
    }
    if let Some(event) = decode_as::<TaskDeleted>(message) {
        let event = event.map_err(|e| undecodable(&e))?;
        return Ok(Some((
            event.context.unwrap_or_default(),
            state(None, Some(true)),
        )));
    }
    if let Some(event) = decode_as::<TaskUndeleted>(message) {
        let event = event.map_err(|e| undecodable(&e))?;
        return Ok(Some((
            event.context.unwrap_or_default(),
            state(None, Some(false)),
        )));
    }
    Ok(None)
}

impl TaskEvents {
    /// Keeping `store`'s tasks.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn apply(&self, message: &Message) -> Result<(), HandleError> {
        let Some((context, change)) = change(message)? else {
            return Ok(());
        };
        if context.task.is_empty() {
            return Err(HandleError::Retry(
                "a task event without its task".to_owned(),
            ));
        }
        self.store
            .apply_task(&context.task, context.version, &change)
            .await?;
        Ok(())
    }
}

impl Handler for TaskEvents {
    fn handle<'a>(&'a self, message: &'a Message) -> Handling<'a> {
        Box::pin(self.apply(message))
    }
}
