//! Task commands: create, update, delete, undelete, move, complete, reopen. Commands whose request
//! carries a body (create, update, move) are authorized by their gRPC handler before the body is
//! read, so that a foreign project and a malformed request look alike; the others authorize here.

use prost_types::FieldMask;
use taskmesh_contracts::projects_v1::ColumnKind;
use taskmesh_contracts::scheduler_v1::{self, ScheduleTriggered};
use taskmesh_contracts::tasks_v1::{
    Status as TaskStatus, Task, TaskCompleted, TaskCreated, TaskDeleted, TaskMoved, TaskOrigin,
    TaskReopened, TaskUndeleted, TaskUpdated,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip;
use taskmesh_mesh::status::not_found;
use tonic::Status;
use uuid::Uuid;

use crate::domain::aggregate::TaskState;
use crate::domain::events::TaskEvent;
use crate::domain::names::{ColumnRef, TaskName};
use crate::domain::rules;
use crate::domain::rules::status_of;
use crate::domain::secrets;
use crate::error::{Error, Refusal};
use crate::grpc::service::{Access, Tasks, live};
use crate::store::event_store::{Append, Appended, RequestKey};

/// Fields UpdateTask may change.
pub const UPDATABLE: &[&str] = &[
    "job",
    "title",
    "description",
    "priority",
    "assignee",
    "labels",
    "due_time",
    "estimate",
];

fn refused(refusal: Refusal) -> Status {
    Error::Refused(refusal).into()
}

impl Tasks {
    /// Creates a task in a column of `project`; the caller's write access was checked already.
    pub async fn create_task(
        &self,
        context: &CallContext,
        project: &str,
        task: Task,
        request_id: &str,
    ) -> Result<Task, Status> {
        // The contract has checked every field's own rules (the assignee's form included); what is
        // left needs the project: the column must be one of its own.
        let column = ColumnRef::parse("task.column", &task.column, project)?;
        let request = aip::request_id(request_id).map(|id| RequestKey {
            method: "CreateTask",
            id,
        });
        let found = self.projects.column(context, &column.name).await?;
        let mut job = task.job.clone();
        let name = TaskName {
            project: project.to_owned(),
            task: Uuid::now_v7(),
        };
        secrets::seal_job(&self.sealer, &name.to_string(), &mut job, None);
        let created = TaskCreated {
            title: rules::title(&task.title),
            description: task.description,
            column: column.name.clone(),
            status: status_of(found.kind) as i32,
            priority: task.priority,
            assignee: task.assignee,
            labels: rules::labels(task.labels),
            due_time: task.due_time,
            estimate: task.estimate,
            position: task.position.max(0),
            job,
            ..Default::default()
        };
        self.append_created(context, name, &column, created, request)
            .await
    }

    /// Creates the task an occurrence of a schedule asks for (its template), acting for the
    /// schedule's owner. The occurrence id is the request id (claimed under its own method, so no
    /// id a client sends can take its place): a redelivered firing returns the task it created.
    /// The template's job secrets, sealed for the schedule, are sealed again for the task.
    /// `None` when the firing carries no template.
    pub async fn create_scheduled(
        &self,
        context: &CallContext,
        firing: &ScheduleTriggered,
    ) -> Result<Option<Task>, Status> {
        let Some(scheduler_v1::action::Kind::CreateTask(template)) =
            firing.action.as_ref().and_then(|a| a.kind.clone())
        else {
            return Ok(None);
        };
        let [project, _] = taskmesh_mesh::names::ResourcePattern::of::<scheduler_v1::Schedule>()
            .parse("schedule", &firing.schedule)?;
        let column = ColumnRef::parse("template.column", &template.column, project)?;
        let id = Uuid::parse_str(&firing.occurrence_id)
            .map_err(|_| Status::invalid_argument("occurrence_id is not a UUID"))?;
        let name = TaskName {
            project: project.to_owned(),
            task: Uuid::now_v7(),
        };
        let mut job = template.job;
        if let Some(headers) = secrets::headers(&mut job) {
            self.sealer
                .open_headers(&firing.schedule, headers)
                .map_err(|(header, _)| {
                    Status::failed_precondition(format!(
                        "the template's sealed header {header} does not open"
                    ))
                })?;
        }
        secrets::seal_job(&self.sealer, &name.to_string(), &mut job, None);
        let due_time = match (&firing.occurrence_time, &template.due_after) {
            (Some(at), Some(after)) => Some(prost_types::Timestamp {
                seconds: at.seconds + after.seconds,
                nanos: at.nanos,
            }),
            _ => None,
        };
        let created = TaskCreated {
            title: rules::title(&template.title),
            description: template.description,
            column: column.name.clone(),
            status: firing.status,
            priority: template.priority,
            assignee: template.assignee,
            labels: rules::labels(template.labels),
            due_time,
            estimate: template.estimate,
            position: 0,
            job,
            origin: Some(TaskOrigin {
                schedule: firing.schedule.clone(),
                occurrence_time: firing.occurrence_time,
                occurrence_id: firing.occurrence_id.clone(),
            }),
            ..Default::default()
        };
        let request = Some(RequestKey {
            method: "ScheduleTriggered",
            id,
        });
        self.append_created(context, name, &column, created, request)
            .await
            .map(Some)
    }

    /// Appends `created` as the first event of task `name` (its context filled in here).
    async fn append_created(
        &self,
        context: &CallContext,
        name: TaskName,
        column: &ColumnRef,
        mut created: TaskCreated,
        request: Option<RequestKey>,
    ) -> Result<Task, Status> {
        created.context = Some(Self::next_context(context, &name, 0));
        let event = TaskEvent::Created(Box::new(created));
        let state = TaskState::replay(std::slice::from_ref(&event)).unwrap_or_default();
        let append = Append {
            task: &name,
            expected: 0,
            events: vec![event],
            board: column.board.clone(),
            deleted: false,
            before: None,
            snapshot: state.snapshot(),
            quota: Some(self.quota(&column.board)),
            request,
            resource: None,
        };
        match self.events.append(context, append).await? {
            Appended::Stored => Ok(state.task),
            Appended::Replayed(existing) => {
                let existing = TaskName::parse("name", &existing)?;
                Ok(self.load(&existing).await?.task)
            }
        }
    }

    /// Reads a task from its events: always the latest write.
    pub async fn get_task(&self, context: &CallContext, name: &TaskName) -> Result<Task, Status> {
        self.authorize(context, &name.project, Access::Read).await?;
        let (state, job_status) = self
            .events
            .load_with_job_status(name.task)
            .await?
            .filter(|(state, _)| state.task.name == name.to_string())
            .ok_or_else(|| not_found(&name.to_string()))?;
        let mut task = state.task;
        task.job_status = job_status;
        Ok(task)
    }

    /// Changes the fields in `mask`.
    pub async fn update_task(
        &self,
        context: &CallContext,
        task: Task,
        mask: Option<&FieldMask>,
    ) -> Result<Task, Status> {
        let name = TaskName::parse("task.name", &task.name)?;
        let paths = aip::update_paths(mask, UPDATABLE)?;
        let mut changes = Task::default();
        for path in &paths {
            match *path {
                "title" => changes.title = rules::title(&task.title),
                "description" => changes.description.clone_from(&task.description),
                "priority" => changes.priority = task.priority,
                "assignee" => changes.assignee.clone_from(&task.assignee),
                "labels" => changes.labels = rules::labels(task.labels.clone()),
                "due_time" => changes.due_time = task.due_time,
                "job" => changes.job.clone_from(&task.job),
                "estimate" => changes.estimate = task.estimate,
                _ => {}
            }
        }
        let mask = FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        };
        let state = self
            .execute(context, &name, &task.etag, |state: &TaskState, next| {
                live(state)?;
                let mut changes = changes.clone();
                if mask.paths.iter().any(|p| p == "job") {
                    let previous = state.task.job.as_ref();
                    secrets::seal_job(&self.sealer, &next.task, &mut changes.job, previous);
                }
                let event = TaskEvent::Updated(Box::new(TaskUpdated {
                    context: Some(next),
                    changes: Some(changes),
                    update_mask: Some(mask.clone()),
                }));
                Ok((event, None))
            })
            .await?;
        Ok(state.task)
    }

    /// Soft-deletes a live task (DeleteTask).
    pub async fn delete(
        &self,
        context: &CallContext,
        name: &TaskName,
        given_etag: &str,
    ) -> Result<Task, Status> {
        self.authorize(context, &name.project, Access::Write)
            .await?;
        let state = self
            .execute(context, name, given_etag, |state: &TaskState, next| {
                live(state)?;
                let deleted = TaskDeleted {
                    context: Some(next),
                };
                Ok((TaskEvent::Deleted(deleted), None))
            })
            .await?;
        Ok(state.task)
    }

    /// Restores a soft-deleted task, within its board's quota (UndeleteTask).
    pub async fn undelete(
        &self,
        context: &CallContext,
        name: &TaskName,
        given_etag: &str,
    ) -> Result<Task, Status> {
        self.authorize(context, &name.project, Access::Write)
            .await?;
        let state = self
            .execute(context, name, given_etag, |state: &TaskState, next| {
                if !state.is_deleted() {
                    return Err(refused(Refusal::NotDeleted(state.task.name.clone())));
                }
                let undeleted = TaskUndeleted {
                    context: Some(next),
                };
                Ok((
                    TaskEvent::Undeleted(undeleted),
                    Some(self.quota(&state.board())),
                ))
            })
            .await?;
        Ok(state.task)
    }

    /// Moves a task to `column` at `position`.
    pub async fn move_task(
        &self,
        context: &CallContext,
        name: &TaskName,
        column: &str,
        position: i32,
        given_etag: &str,
    ) -> Result<Task, Status> {
        let target = ColumnRef::parse("column", column, &name.project)?;
        let found = self.projects.column(context, &target.name).await?;
        let state = self
            .execute(context, name, given_etag, |state: &TaskState, next| {
                let task = live(state)?;
                let quota = (state.board() != target.board).then(|| self.quota(&target.board));
                let event = TaskEvent::Moved(TaskMoved {
                    context: Some(next),
                    column: target.name.clone(),
                    status: status_of(found.kind) as i32,
                    position,
                    previous_column: task.column.clone(),
                });
                Ok((event, quota))
            })
            .await?;
        Ok(state.task)
    }

    /// Completes a task: it moves to the first Done column of its board.
    pub async fn complete_task(
        &self,
        context: &CallContext,
        name: &TaskName,
        given_etag: &str,
    ) -> Result<Task, Status> {
        self.authorize(context, &name.project, Access::Write)
            .await?;
        let board = self.load(name).await?.board();
        let done = self
            .projects
            .first_column(context, &board, &[ColumnKind::Done])
            .await?
            .ok_or_else(|| refused(Refusal::NoDoneColumn(board.clone())))?;
        let state = self
            .execute(context, name, given_etag, |state: &TaskState, next| {
                let task = live(state)?;
                if task.complete_time.is_some() {
                    return Err(refused(Refusal::AlreadyCompleted(task.name.clone())));
                }
                same_board(state, &board)?;
                let event = TaskEvent::Completed(TaskCompleted {
                    context: Some(next),
                    column: done.name.clone(),
                    status: TaskStatus::Done as i32,
                });
                Ok((event, None))
            })
            .await?;
        Ok(state.task)
    }

    /// Reopens a completed task: it moves to the first To do (else Backlog, Doing, custom) column.
    pub async fn reopen_task(
        &self,
        context: &CallContext,
        name: &TaskName,
        given_etag: &str,
    ) -> Result<Task, Status> {
        self.authorize(context, &name.project, Access::Write)
            .await?;
        let board = self.load(name).await?.board();
        let open = self
            .projects
            .first_column(
                context,
                &board,
                &[
                    ColumnKind::Todo,
                    ColumnKind::Backlog,
                    ColumnKind::Doing,
                    ColumnKind::Custom,
                ],
            )
            .await?
            .ok_or_else(|| refused(Refusal::NoOpenColumn(board.clone())))?;
        let state = self
            .execute(context, name, given_etag, |state: &TaskState, next| {
                let task = live(state)?;
                if task.complete_time.is_none() {
                    return Err(refused(Refusal::NotCompleted(task.name.clone())));
                }
                same_board(state, &board)?;
                let event = TaskEvent::Reopened(TaskReopened {
                    context: Some(next),
                    status: status_of(open.kind) as i32,
                    column: open.name.clone(),
                });
                Ok((event, None))
            })
            .await?;
        Ok(state.task)
    }
}

/// ABORTED when the task moved to another board between the lookup and the write.
fn same_board(state: &TaskState, board: &str) -> Result<(), Status> {
    if state.board() == board {
        Ok(())
    } else {
        Err(Status::aborted(format!(
            "{} moved to another board meanwhile; retry",
            state.task.name
        )))
    }
}
