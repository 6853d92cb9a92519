//! The task aggregate: its state is the fold of its events. The same fold builds the write model
//! (for commands and GetTask) and the read model's copy (in the projector).

use prost_types::{Duration, Timestamp};
use taskmesh_contracts::tasks_v1::{Comment, Task, WorkLog};

use super::events::TaskEvent;

/// The etag of a task at `version`.
pub fn etag(version: i64) -> String {
    format!("v{version}")
}

/// Everything known about a task after folding its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskState {
    /// The task as clients see it.
    pub task: Task,
    /// Comments in order of creation (deleted ones removed).
    pub comments: Vec<Comment>,
    /// Work logs in order of logging.
    pub work_logs: Vec<WorkLog>,
    /// The version of the last event applied.
    pub version: i64,
}

/// A task's state as stored beside its head after every append, so loading a task reads one row
/// instead of folding its whole history (a task collects events for as long as it lives).
#[derive(Clone, PartialEq, prost::Message)]
struct Snapshot {
    #[prost(message, optional, tag = "1")]
    task: Option<Task>,
    #[prost(message, repeated, tag = "2")]
    comments: Vec<Comment>,
    #[prost(message, repeated, tag = "3")]
    work_logs: Vec<WorkLog>,
    #[prost(int64, tag = "4")]
    version: i64,
}

impl TaskState {
    /// The state as stored beside the task's head.
    pub fn snapshot(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(&Snapshot {
            task: Some(self.task.clone()),
            comments: self.comments.clone(),
            work_logs: self.work_logs.clone(),
            version: self.version,
        })
    }

    /// The state a [`snapshot`](Self::snapshot) holds.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        let snapshot: Snapshot = prost::Message::decode(bytes)?;
        Ok(Self {
            task: snapshot.task.unwrap_or_default(),
            comments: snapshot.comments,
            work_logs: snapshot.work_logs,
            version: snapshot.version,
        })
    }

    /// Folds `events` in order; `None` when there is none.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a TaskEvent>) -> Option<Self> {
        let mut state: Option<Self> = None;
        for event in events {
            let current = state.get_or_insert_with(Self::default);
            current.apply(event);
        }
        state
    }

    /// Applies one event.
    pub fn apply(&mut self, event: &TaskEvent) {
        apply_to_task(&mut self.task, event);
        self.version = event.version();
        match event {
            TaskEvent::CommentAdded(e) => {
                if let Some(comment) = &e.comment {
                    self.comments.push(comment.clone());
                }
            }
            TaskEvent::CommentUpdated(e) => {
                if let Some(updated) = &e.comment
                    && let Some(comment) = self.comments.iter_mut().find(|c| c.name == updated.name)
                {
                    *comment = updated.clone();
                }
            }
            TaskEvent::CommentDeleted(e) => self.comments.retain(|c| c.name != e.comment),
            TaskEvent::WorkLogged(e) => {
                if let Some(log) = &e.work_log {
                    self.work_logs.push(log.clone());
                }
            }
            _ => {}
        }
    }

    /// True while the task is soft-deleted.
    pub fn is_deleted(&self) -> bool {
        self.task.delete_time.is_some()
    }

    /// The board of the task's column, `projects/{p}/boards/{b}`.
    pub fn board(&self) -> String {
        self.task
            .column
            .rsplit_once("/columns/")
            .map(|(board, _)| board.to_owned())
            .unwrap_or_default()
    }
}

/// Applies `event` to the client-visible task; used by both models.
pub fn apply_to_task(task: &mut Task, event: &TaskEvent) {
    let Some(context) = event.context() else {
        return;
    };
    task.update_time = context.time;
    task.etag = etag(context.version);
    match event {
        TaskEvent::Created(e) => {
            *task = Task {
                name: context.task.clone(),
                title: e.title.clone(),
                description: e.description.clone(),
                column: e.column.clone(),
                status: e.status,
                priority: e.priority,
                assignee: e.assignee.clone(),
                labels: e.labels.clone(),
                due_time: e.due_time,
                estimate: e.estimate,
                position: e.position,
                create_time: context.time,
                update_time: context.time,
                complete_time: None,
                delete_time: None,
                etag: etag(context.version),
                creator: context.actor.clone(),
                logged_work: Some(Duration::default()),
                job: e.job.clone(),
                // Filled from the execution service's events at read time.
                job_status: None,
                origin: e.origin.clone(),
            };
        }
        TaskEvent::Updated(e) => {
            let (Some(changes), Some(mask)) = (&e.changes, &e.update_mask) else {
                return;
            };
            for path in &mask.paths {
                match path.as_str() {
                    "title" => task.title.clone_from(&changes.title),
                    "description" => task.description.clone_from(&changes.description),
                    "priority" => task.priority = changes.priority,
                    "assignee" => task.assignee.clone_from(&changes.assignee),
                    "labels" => task.labels.clone_from(&changes.labels),
                    "due_time" => task.due_time = changes.due_time,
                    "estimate" => task.estimate = changes.estimate,
                    "job" => task.job.clone_from(&changes.job),
                    _ => {}
                }
            }
        }
        TaskEvent::Moved(e) => {
            task.column.clone_from(&e.column);
            task.status = e.status;
            task.position = e.position;
            task.complete_time = completion(task.complete_time, e.status, context.time);
        }
        TaskEvent::Completed(e) => {
            task.column.clone_from(&e.column);
            task.status = e.status;
            task.complete_time = context.time;
        }
        TaskEvent::Reopened(e) => {
            task.column.clone_from(&e.column);
            task.status = e.status;
            task.complete_time = None;
        }
        TaskEvent::Deleted(_) => task.delete_time = context.time,
        TaskEvent::Undeleted(_) => task.delete_time = None,
        TaskEvent::WorkLogged(e) => {
            let added = e
                .work_log
                .as_ref()
                .and_then(|w| w.duration)
                .unwrap_or_default();
            task.logged_work = Some(add(task.logged_work.unwrap_or_default(), added));
        }
        TaskEvent::CommentAdded(_)
        | TaskEvent::CommentUpdated(_)
        | TaskEvent::CommentDeleted(_) => {}
    }
}

/// Moving into a Done column completes a task; moving out of one reopens it.
fn completion(
    current: Option<Timestamp>,
    status: i32,
    time: Option<Timestamp>,
) -> Option<Timestamp> {
    use taskmesh_contracts::tasks_v1::Status;
    if status == Status::Done as i32 {
        current.or(time)
    } else {
        None
    }
}

fn add(a: Duration, b: Duration) -> Duration {
    let nanos = i64::from(a.nanos) + i64::from(b.nanos);
    Duration {
        seconds: a.seconds + b.seconds + nanos / 1_000_000_000,
        nanos: i32::try_from(nanos % 1_000_000_000).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use taskmesh_contracts::tasks_v1::{
        CommentAdded, CommentDeleted, EventContext, Status, TaskCompleted, TaskCreated, TaskMoved,
        TaskUpdated, WorkLogged,
    };

    use super::*;

    fn context(version: i64) -> Option<EventContext> {
        Some(EventContext {
            task: "projects/p/tasks/t".into(),
            version,
            actor: "users/ada".into(),
            time: Some(Timestamp {
                seconds: 1_000 + version,
                nanos: 0,
            }),
        })
    }

    fn history() -> Vec<TaskEvent> {
        vec![
            TaskEvent::Created(Box::new(TaskCreated {
                context: context(1),
                title: "Write".into(),
                column: "projects/p/boards/b/columns/todo".into(),
                status: Status::Todo as i32,
                ..Default::default()
            })),
            TaskEvent::Updated(Box::new(TaskUpdated {
                context: context(2),
                changes: Some(Task {
                    title: "Write docs".into(),
                    description: "ignored".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into()],
                }),
            })),
            TaskEvent::Moved(TaskMoved {
                context: context(3),
                column: "projects/p/boards/b/columns/done".into(),
                status: Status::Done as i32,
                position: 2,
                previous_column: "projects/p/boards/b/columns/todo".into(),
            }),
            TaskEvent::CommentAdded(CommentAdded {
                context: context(4),
                comment: Some(Comment {
                    name: "c1".into(),
                    text: "hi".into(),
                    ..Default::default()
                }),
            }),
            TaskEvent::CommentDeleted(CommentDeleted {
                context: context(5),
                comment: "c1".into(),
            }),
            TaskEvent::WorkLogged(WorkLogged {
                context: context(6),
                work_log: Some(WorkLog {
                    duration: Some(Duration {
                        seconds: 90,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
            }),
        ]
    }

    #[test]
    fn the_state_is_the_fold_of_the_events() {
        let events = history();
        let state = TaskState::replay(&events).expect("state");
        assert_eq!(state.version, 6);
        assert_eq!(state.task.etag, "v6");
        assert_eq!(state.task.title, "Write docs");
        assert_eq!(state.task.description, "");
        assert_eq!(state.task.status, Status::Done as i32);
        assert_eq!(state.task.position, 2);
        assert!(
            state.task.complete_time.is_some(),
            "moving to Done completes"
        );
        assert!(state.comments.is_empty());
        assert_eq!(
            state.task.logged_work,
            Some(Duration {
                seconds: 90,
                nanos: 0
            })
        );
        assert_eq!(state.task.creator, "users/ada");
        assert_eq!(state.board(), "projects/p/boards/b");
    }

    #[test]
    fn reopening_clears_completion_and_events_round_trip() {
        let mut events = history();
        events.push(TaskEvent::Completed(TaskCompleted {
            context: context(7),
            column: "projects/p/boards/b/columns/done".into(),
            status: Status::Done as i32,
        }));
        for event in &events {
            let decoded = TaskEvent::decode(&event.full_name(), &event.encode()).expect("decodes");
            assert_eq!(&decoded, event);
        }
        assert!(TaskEvent::decode("taskmesh.tasks.v1.Nope", &[]).is_err());
        assert!(
            TaskEvent::decode("taskmesh.tasks.v1.TaskDeleted", &[]).is_err(),
            "no context"
        );
    }

    #[test]
    fn no_events_no_task() {
        assert!(TaskState::replay(&[]).is_none());
    }
}
