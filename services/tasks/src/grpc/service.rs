//! The tasks application layer: authorization against the projects service, and the one way every
//! command runs: load the task from its events, check the etag, decide the event, append it with
//! optimistic concurrency. Commands without an etag are retried when a concurrent writer wins.

use taskmesh_contracts::projects_v1::Role;
use taskmesh_contracts::tasks_v1::{EventContext, Task};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::sealed::Sealer;
use taskmesh_mesh::status::{etag_mismatch, not_found};
use tonic::Status;

use crate::domain::aggregate::{TaskState, etag};
use crate::domain::events::TaskEvent;
use crate::domain::names::TaskName;
use crate::domain::rules::Limits;
use crate::error::Error;
use crate::store::event_store::{Append, Appended, BoardQuota, EventStore, RequestKey};
use taskmesh_clients::projects::ProjectsClient;

/// How often a command without an etag is retried after losing a race.
const MAX_ATTEMPTS: usize = 5;

pub use taskmesh_clients::projects::Access;

/// Shared handles of the tasks service.
#[derive(Debug, Clone)]
pub struct Tasks {
    pub(crate) events: EventStore,
    pub(crate) projects: ProjectsClient,
    pub(crate) limits: Limits,
    /// Seals the secrets of jobs as they are set.
    pub(crate) sealer: Sealer,
}

impl Tasks {
    /// The service over its event store and the projects client, sealing jobs' secrets with
    /// `sealer`.
    pub fn new(
        events: EventStore,
        projects: ProjectsClient,
        limits: Limits,
        sealer: Sealer,
    ) -> Self {
        Self {
            events,
            projects,
            limits,
            sealer,
        }
    }

    /// PERMISSION_DENIED unless the caller may `access` the project; runs before any lookup.
    pub(crate) async fn authorize(
        &self,
        context: &CallContext,
        project: &str,
        access: Access,
    ) -> Result<Role, Status> {
        self.projects.authorize(context, project, access).await
    }

    /// The task, soft-deleted or not.
    pub(crate) async fn load(&self, name: &TaskName) -> Result<TaskState, Status> {
        self.events
            .load(name.task)
            .await?
            .filter(|state| state.task.name == name.to_string())
            .ok_or_else(|| not_found(&name.to_string()))
    }

    /// The context of the next event of `name` after `version`.
    pub(crate) fn next_context(
        context: &CallContext,
        name: &TaskName,
        version: i64,
    ) -> EventContext {
        EventContext {
            task: name.to_string(),
            version: version + 1,
            actor: context.caller.clone(),
            time: Some(taskmesh_mesh::time::now()),
        }
    }

    /// Runs a command on an existing task: `decide` sees the current state and the context of the
    /// next event and returns that event (and a quota to check). With an etag the command runs
    /// once; without one it is retried when a concurrent writer got there first.
    pub(crate) async fn execute(
        &self,
        context: &CallContext,
        name: &TaskName,
        given_etag: &str,
        decide: impl FnMut(&TaskState, EventContext) -> Result<(TaskEvent, Option<BoardQuota>), Status>,
    ) -> Result<TaskState, Status> {
        match self
            .execute_once(context, name, given_etag, None, decide)
            .await?
        {
            Executed::Applied(state) => Ok(*state),
            // Only a request with an idempotency key can be a replay.
            Executed::Replayed(resource) => Err(taskmesh_mesh::status::internal(
                &std::io::Error::other(format!("unexpected replay of {resource}")),
            )),
        }
    }

    /// [`execute`](Self::execute) for a command that makes a child resource (`resource`) and may
    /// carry an idempotency key: a retry with the same key makes nothing and names what the first
    /// call made.
    pub(crate) async fn execute_once(
        &self,
        context: &CallContext,
        name: &TaskName,
        given_etag: &str,
        keyed: Option<(RequestKey, &str)>,
        mut decide: impl FnMut(
            &TaskState,
            EventContext,
        ) -> Result<(TaskEvent, Option<BoardQuota>), Status>,
    ) -> Result<Executed, Status> {
        let resource = name.to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut state = self.load(name).await?;
            if !given_etag.is_empty() && given_etag != etag(state.version) {
                return Err(etag_mismatch(&resource, &etag(state.version)));
            }
            let next = Self::next_context(context, name, state.version);
            let (event, quota) = decide(&state, next)?;
            let before = (state.board(), state.is_deleted());
            state.apply(&event);
            let append = Append {
                task: name,
                expected: state.version - 1,
                board: state.board(),
                deleted: state.is_deleted(),
                before: Some(before),
                snapshot: state.snapshot(),
                events: vec![event],
                quota,
                request: keyed.map(|(key, _)| key),
                resource: keyed.map(|(_, child)| child),
            };
            match self.events.append(context, append).await {
                Ok(Appended::Stored) => return Ok(Executed::Applied(Box::new(state))),
                Ok(Appended::Replayed(existing)) => return Ok(Executed::Replayed(existing)),
                Err(Error::EtagMismatch { .. })
                    if given_etag.is_empty() && attempt < MAX_ATTEMPTS =>
                {
                    tracing::debug!(task = %resource, attempt, "concurrent write; retrying");
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// The quota to check when a task lands on `board`.
    pub(crate) fn quota(&self, board: &str) -> BoardQuota {
        BoardQuota {
            board: board.to_owned(),
            limit: self.limits.max_tasks_per_board,
        }
    }
}

/// NOT_FOUND for writes to a soft-deleted task.
pub(crate) fn live(state: &TaskState) -> Result<&Task, Status> {
    if state.is_deleted() {
        Err(not_found(&state.task.name))
    } else {
        Ok(&state.task)
    }
}

/// What [`Tasks::execute_once`] did.
#[derive(Debug)]
pub(crate) enum Executed {
    /// The event is stored; the task's state after it.
    Applied(Box<TaskState>),
    /// The idempotency key was used before: the resource the first call made.
    Replayed(String),
}
