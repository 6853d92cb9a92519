//! Notifications from the tasks service's events, and the read model of tasks they need. Events
//! of one task carry gap-free versions: one that comes before the task is known, or after a gap,
//! waits for the ones before it; one already applied is skipped.

use std::time::Duration;

use async_nats::jetstream::Message;
use taskmesh_contracts::tasks_v1::{
    CommentAdded, EventContext, Status, TaskCompleted, TaskCreated, TaskDeleted, TaskMoved,
    TaskReopened, TaskUndeleted, TaskUpdated,
};
use taskmesh_events::consumer::{HandleError, Handling};
use taskmesh_events::decode_as;
use taskmesh_mesh::time::from_timestamp;

use super::{Batch, Rule, project_of, too_early, undecodable};
use crate::domain::rules::{self, Draft, TaskChange, TaskFacts};
use crate::store::facts::{self, TaskChanges};

/// How long an event of a task not yet known (or after a gap) waits before it is tried again.
const TOO_EARLY: Duration = Duration::from_millis(500);

/// Consumes `TASKS`.
#[derive(Debug, Clone)]
pub struct TaskEvents;

/// What an event other than a creation does to a known task.
struct Effect {
    changes: TaskChanges,
    change: Option<TaskChange>,
}

impl TaskEvents {
    async fn handle_event(&self, batch: &mut Batch, message: &Message) -> Result<(), HandleError> {
        if let Some(event) = decode_as::<TaskCreated>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            return self.created(batch, message, event).await;
        }
        let (context, effect) = if let Some(event) = decode_as::<TaskUpdated>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            (event.context.clone(), updated(&event))
        } else if let Some(event) = decode_as::<TaskMoved>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            (event.context.clone(), moved(&event))
        } else if let Some(event) = decode_as::<TaskCompleted>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            let effect = Effect {
                changes: TaskChanges {
                    done: Some(true),
                    ..TaskChanges::default()
                },
                change: Some(TaskChange::Completed),
            };
            (event.context, effect)
        } else if let Some(event) = decode_as::<TaskReopened>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            let effect = Effect {
                changes: TaskChanges {
                    done: Some(event.status() == Status::Done),
                    ..TaskChanges::default()
                },
                change: None,
            };
            (event.context, effect)
        } else if let Some(event) = decode_as::<TaskDeleted>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            let effect = Effect {
                changes: TaskChanges {
                    deleted: Some(true),
                    ..TaskChanges::default()
                },
                change: Some(TaskChange::Deleted),
            };
            (event.context, effect)
        } else if let Some(event) = decode_as::<TaskUndeleted>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            let effect = Effect {
                changes: TaskChanges {
                    deleted: Some(false),
                    ..TaskChanges::default()
                },
                change: None,
            };
            (event.context, effect)
        } else if let Some(event) = decode_as::<CommentAdded>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            let comment = event.comment.unwrap_or_default();
            let effect = Effect {
                changes: TaskChanges::default(),
                change: Some(TaskChange::Commented {
                    comment: comment.name,
                    text: comment.text,
                }),
            };
            (event.context, effect)
        } else {
            // Comment edits, deletions and work logs tell nobody; their versions still count.
            (
                version_only(message)?,
                Effect {
                    changes: TaskChanges::default(),
                    change: None,
                },
            )
        };
        let Some(context) = context else {
            return Ok(());
        };
        self.changed(batch, message, &context, effect).await
    }

    async fn created(
        &self,
        batch: &mut Batch,
        message: &Message,
        event: TaskCreated,
    ) -> Result<(), HandleError> {
        let context = event.context.clone().unwrap_or_default();
        let Some(event_id) = batch.claim(message)? else {
            return Ok(());
        };
        let task = TaskFacts {
            task: context.task.clone(),
            project: project_of(&context.task),
            title: event.title.clone(),
            creator: context.actor.clone(),
            assignee: event.assignee.clone(),
            job_owner: if event.job.is_some() {
                context.actor.clone()
            } else {
                String::new()
            },
        };
        let done = event.status() == Status::Done;
        let created = facts::create_task(
            batch.conn(),
            &task,
            from_timestamp(event.due_time),
            done,
            context.version,
        )
        .await?;
        if !created {
            // Known already (a replay after the read model was rebuilt): nobody is told again.
            return Ok(());
        }
        let actor = batch.person(&context.actor).await?;
        let drafts = rules::task_changed(&TaskChange::Created, &task, &actor);
        batch.notify(&event_id, &drafts);
        Ok(())
    }

    async fn changed(
        &self,
        batch: &mut Batch,
        message: &Message,
        context: &EventContext,
        effect: Effect,
    ) -> Result<(), HandleError> {
        let Some(event_id) = batch.claim(message)? else {
            return Ok(());
        };
        let conn = batch.conn();
        let Some(stored) = facts::task(conn, &context.task).await? else {
            return Err(too_early(
                message,
                TOO_EARLY,
                format!("{} is not known yet", context.task),
            ));
        };
        if context.version <= stored.version {
            return Ok(());
        }
        if context.version > stored.version + 1 {
            return Err(too_early(
                message,
                TOO_EARLY,
                format!(
                    "{} is at version {}; {} comes later",
                    context.task, stored.version, context.version
                ),
            ));
        }
        facts::change_task(conn, &context.task, &effect.changes, context.version).await?;
        let drafts = match &effect.change {
            Some(change) => drafts_of(batch, change, stored.facts, &effect, context).await?,
            None => Vec::new(),
        };
        batch.notify(&event_id, &drafts);
        Ok(())
    }
}

/// The drafts of `change`: about the task after it, except deletion (as it was).
async fn drafts_of(
    batch: &mut Batch,
    change: &TaskChange,
    before: TaskFacts,
    effect: &Effect,
    context: &EventContext,
) -> Result<Vec<Draft>, HandleError> {
    let mut task = before;
    if let Some(title) = &effect.changes.title {
        task.title.clone_from(title);
    }
    if let Some(assignee) = &effect.changes.assignee {
        task.assignee.clone_from(assignee);
    }
    let actor = batch.person(&context.actor).await?;
    Ok(rules::task_changed(change, &task, &actor))
}

fn updated(event: &TaskUpdated) -> Effect {
    let paths: Vec<&str> = event
        .update_mask
        .as_ref()
        .map(|m| m.paths.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let task = event.changes.clone().unwrap_or_default();
    let actor = event
        .context
        .as_ref()
        .map(|c| c.actor.clone())
        .unwrap_or_default();
    let mut changes = TaskChanges::default();
    let mut change = None;
    for path in paths {
        match path {
            "title" => changes.title = Some(task.title.clone()),
            "assignee" => {
                changes.assignee = Some(task.assignee.clone());
                change = Some(TaskChange::Reassigned);
            }
            "due_time" => changes.due_time = Some(from_timestamp(task.due_time)),
            "job" => {
                changes.job_owner = Some(if task.job.is_some() {
                    actor.clone()
                } else {
                    String::new()
                });
            }
            _ => {}
        }
    }
    Effect { changes, change }
}

fn moved(event: &TaskMoved) -> Effect {
    let done = event.status() == Status::Done;
    let change = if event.column == event.previous_column {
        None
    } else if done {
        Some(TaskChange::Completed)
    } else {
        Some(TaskChange::Moved {
            column: event.column.clone(),
        })
    };
    Effect {
        changes: TaskChanges {
            done: Some(done),
            ..TaskChanges::default()
        },
        change,
    }
}

/// The context of an event this service reads only for its version.
fn version_only(message: &Message) -> Result<Option<EventContext>, HandleError> {
    use taskmesh_contracts::tasks_v1::{CommentDeleted, CommentUpdated, WorkLogged};
    if let Some(event) = decode_as::<CommentUpdated>(message) {
        return Ok(event.map_err(|e| undecodable(&e))?.context);
    }
    if let Some(event) = decode_as::<CommentDeleted>(message) {
        return Ok(event.map_err(|e| undecodable(&e))?.context);
    }
    if let Some(event) = decode_as::<WorkLogged>(message) {
        return Ok(event.map_err(|e| undecodable(&e))?.context);
    }
    Ok(None)
}

impl Rule for TaskEvents {
    const CONTEXT: &'static str = "tasks";
    const DURABLE: &'static str = "notifications-tasks";

    fn apply<'a>(&'a self, batch: &'a mut Batch, message: &'a Message) -> Handling<'a> {
        Box::pin(self.handle_event(batch, message))
    }
}
