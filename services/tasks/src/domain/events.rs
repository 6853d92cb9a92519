//! The events of a task, as one enum over the messages of `events.proto`, with their type names,
//! encoding and a one-line summary for the activity feed.

use prost::{Message, Name};
use taskmesh_contracts::tasks_v1::{
    CommentAdded, CommentDeleted, CommentUpdated, EventContext, TaskCompleted, TaskCreated,
    TaskDeleted, TaskMoved, TaskReopened, TaskUndeleted, TaskUpdated, WorkLogged,
};

/// Any event of a task.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskEvent {
    /// The task came to be (boxed: it carries the whole new task).
    Created(Box<TaskCreated>),
    /// Fields changed (boxed: it carries a whole Task of new values).
    Updated(Box<TaskUpdated>),
    /// It moved to another column or place.
    Moved(TaskMoved),
    /// It was completed.
    Completed(TaskCompleted),
    /// It was reopened.
    Reopened(TaskReopened),
    /// It was soft-deleted.
    Deleted(TaskDeleted),
    /// It was restored.
    Undeleted(TaskUndeleted),
    /// A comment was added.
    CommentAdded(CommentAdded),
    /// A comment was edited.
    CommentUpdated(CommentUpdated),
    /// A comment was deleted.
    CommentDeleted(CommentDeleted),
    /// Work was logged.
    WorkLogged(WorkLogged),
}

/// A payload whose type is unknown or whose bytes do not decode.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode task event `{event_type}`: {reason}")]
pub struct DecodeError {
    /// The type name.
    pub event_type: String,
    /// Why.
    pub reason: String,
}

impl TaskEvent {
    /// The protobuf full name, `taskmesh.tasks.v1.TaskCreated`.
    pub fn full_name(&self) -> String {
        match self {
            Self::Created(_) => TaskCreated::full_name(),
            Self::Updated(_) => TaskUpdated::full_name(),
            Self::Moved(_) => TaskMoved::full_name(),
            Self::Completed(_) => TaskCompleted::full_name(),
            Self::Reopened(_) => TaskReopened::full_name(),
            Self::Deleted(_) => TaskDeleted::full_name(),
            Self::Undeleted(_) => TaskUndeleted::full_name(),
            Self::CommentAdded(_) => CommentAdded::full_name(),
            Self::CommentUpdated(_) => CommentUpdated::full_name(),
            Self::CommentDeleted(_) => CommentDeleted::full_name(),
            Self::WorkLogged(_) => WorkLogged::full_name(),
        }
    }

    /// Task, version, actor and time.
    pub fn context(&self) -> Option<&EventContext> {
        match self {
            Self::Created(e) => e.context.as_ref(),
            Self::Updated(e) => e.context.as_ref(),
            Self::Moved(e) => e.context.as_ref(),
            Self::Completed(e) => e.context.as_ref(),
            Self::Reopened(e) => e.context.as_ref(),
            Self::Deleted(e) => e.context.as_ref(),
            Self::Undeleted(e) => e.context.as_ref(),
            Self::CommentAdded(e) => e.context.as_ref(),
            Self::CommentUpdated(e) => e.context.as_ref(),
            Self::CommentDeleted(e) => e.context.as_ref(),
            Self::WorkLogged(e) => e.context.as_ref(),
        }
    }

    /// The version this event produced (0 when the context is missing).
    pub fn version(&self) -> i64 {
        self.context().map_or(0, |c| c.version)
    }

    /// The encoded message.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Created(e) => e.encode_to_vec(),
            Self::Updated(e) => e.encode_to_vec(),
            Self::Moved(e) => e.encode_to_vec(),
            Self::Completed(e) => e.encode_to_vec(),
            Self::Reopened(e) => e.encode_to_vec(),
            Self::Deleted(e) => e.encode_to_vec(),
            Self::Undeleted(e) => e.encode_to_vec(),
            Self::CommentAdded(e) => e.encode_to_vec(),
            Self::CommentUpdated(e) => e.encode_to_vec(),
            Self::CommentDeleted(e) => e.encode_to_vec(),
            Self::WorkLogged(e) => e.encode_to_vec(),
        }
    }

    /// Decodes a payload of type `full_name`.
    pub fn decode(full_name: &str, bytes: &[u8]) -> Result<Self, DecodeError> {
        let fail = |reason: String| DecodeError {
            event_type: full_name.to_owned(),
            reason,
        };
        let short = full_name
            .strip_prefix(TaskCreated::PACKAGE)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or_else(|| fail("not a tasks event".to_owned()))?;
        let event = match short {
            TaskCreated::NAME => TaskCreated::decode(bytes).map(|e| Self::Created(Box::new(e))),
            TaskUpdated::NAME => TaskUpdated::decode(bytes).map(|e| Self::Updated(Box::new(e))),
            TaskMoved::NAME => TaskMoved::decode(bytes).map(Self::Moved),
            TaskCompleted::NAME => TaskCompleted::decode(bytes).map(Self::Completed),
            TaskReopened::NAME => TaskReopened::decode(bytes).map(Self::Reopened),
            TaskDeleted::NAME => TaskDeleted::decode(bytes).map(Self::Deleted),
            TaskUndeleted::NAME => TaskUndeleted::decode(bytes).map(Self::Undeleted),
            CommentAdded::NAME => CommentAdded::decode(bytes).map(Self::CommentAdded),
            CommentUpdated::NAME => CommentUpdated::decode(bytes).map(Self::CommentUpdated),
            CommentDeleted::NAME => CommentDeleted::decode(bytes).map(Self::CommentDeleted),
            WorkLogged::NAME => WorkLogged::decode(bytes).map(Self::WorkLogged),
            other => return Err(fail(format!("unknown event `{other}`"))),
        };
        let event = event.map_err(|e| fail(e.to_string()))?;
        if event.context().is_none() {
            return Err(fail("the event has no context".to_owned()));
        }
        Ok(event)
    }

    /// One line for the activity feed.
    pub fn summary(&self) -> String {
        match self {
            Self::Created(e) => format!("created \"{}\" in {}", e.title, e.column),
            Self::Updated(e) => format!(
                "changed {}",
                e.update_mask
                    .as_ref()
                    .map(|m| m.paths.join(", "))
                    .unwrap_or_default()
            ),
            Self::Moved(e) => format!("moved from {} to {}", e.previous_column, e.column),
            Self::Completed(e) => format!("completed (moved to {})", e.column),
            Self::Reopened(e) => format!("reopened (moved to {})", e.column),
            Self::Deleted(_) => "deleted".to_owned(),
            Self::Undeleted(_) => "restored".to_owned(),
            Self::CommentAdded(e) => format!(
                "commented {}",
                e.comment
                    .as_ref()
                    .map(|c| c.name.as_str())
                    .unwrap_or_default()
            ),
            Self::CommentUpdated(e) => format!(
                "edited comment {}",
                e.comment
                    .as_ref()
                    .map(|c| c.name.as_str())
                    .unwrap_or_default()
            ),
            Self::CommentDeleted(e) => format!("deleted comment {}", e.comment),
            Self::WorkLogged(e) => {
                let seconds = e
                    .work_log
                    .as_ref()
                    .and_then(|w| w.duration)
                    .map_or(0, |d| d.seconds);
                format!("logged {}m of work", seconds / 60)
            }
        }
    }
}
