//! What the notes service learns from the other services' events:
//!
//! - `PROJECTS`: who belongs to which project with which role (the `members` read model behind
//!   project notes' access and search), each fact applied only if its event is newer than the one
//!   the row came from (the stream's sequence), so a redelivery never undoes a later change; a
//!   deleted project's links (and its tasks') are marked broken, an undeleted one's mended;
//! - `TASKS`: a deleted task's links are marked broken, an undeleted one's mended.
//!
//! Deletions are kept in stream order too (`link_targets`): an older event redelivered late
//! changes nothing.

use async_nats::jetstream::Message;
use taskmesh_contracts::projects_v1::{
    MemberAdded, MemberRemoved, MemberRoleChanged, ProjectDeleted, ProjectUndeleted,
};
use taskmesh_contracts::tasks_v1::{TaskDeleted, TaskUndeleted};
use taskmesh_events::consumer::{HandleError, Handler, Handling};
use taskmesh_events::decode_as;

use crate::store::Store;

/// Durable consumer of `PROJECTS`.
pub const PROJECTS_DURABLE: &str = "notes-projects";
/// Durable consumer of `TASKS`.
pub const TASKS_DURABLE: &str = "notes-tasks";

/// The message's position in its stream: events of one stream apply in this order.
fn stream_position(message: &Message) -> Result<i64, HandleError> {
    message
        .info()
        .map(|info| i64::try_from(info.stream_sequence).unwrap_or(i64::MAX))
        .map_err(|e| HandleError::Retry(format!("no stream position: {e}")))
}

fn undecodable(e: &prost::DecodeError) -> HandleError {
    HandleError::Retry(format!("undecodable: {e}"))
}

/// Consumes `PROJECTS`.
#[derive(Debug, Clone)]
pub struct ProjectEvents {
    store: Store,
}

impl ProjectEvents {
    /// Keeping `store`'s members and links.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn apply(&self, message: &Message) -> Result<(), HandleError> {
        let seq = stream_position(message)?;
        let (member, role) = if let Some(event) = decode_as::<MemberAdded>(message) {
            let member = event
                .map_err(|e| undecodable(&e))?
                .member
                .unwrap_or_default();
            let role = member.role;
            (member, role)
        } else if let Some(event) = decode_as::<MemberRoleChanged>(message) {
            let member = event
                .map_err(|e| undecodable(&e))?
                .member
                .unwrap_or_default();
            let role = member.role;
            (member, role)
        } else if let Some(event) = decode_as::<MemberRemoved>(message) {
            (
                event
                    .map_err(|e| undecodable(&e))?
                    .member
                    .unwrap_or_default(),
                0,
            )
        } else if let Some(event) = decode_as::<ProjectDeleted>(message) {
            let project = event
                .map_err(|e| undecodable(&e))?
                .project
                .unwrap_or_default();
            self.store
                .set_target_deleted(&project.name, true, seq)
                .await?;
            return Ok(());
        } else if let Some(event) = decode_as::<ProjectUndeleted>(message) {
            let project = event
                .map_err(|e| undecodable(&e))?
                .project
                .unwrap_or_default();
            self.store
                .set_target_deleted(&project.name, false, seq)
                .await?;
            return Ok(());
        } else {
            return Ok(());
        };
        // `projects/{project}/members/{member}`.
        let Some((project, _)) = member.name.split_once("/members/") else {
            return Err(HandleError::Retry(format!(
                "a member named `{}`",
                member.name
            )));
        };
        let role = i16::try_from(role).unwrap_or_default();
        self.store
            .set_member(project, &member.user, role, seq)
            .await?;
        Ok(())
    }
}

impl Handler for ProjectEvents {
    fn handle<'a>(&'a self, message: &'a Message) -> Handling<'a> {
        Box::pin(self.apply(message))
    }
}

/// Consumes `TASKS`.
#[derive(Debug, Clone)]
pub struct TaskEvents {
    store: Store,
}

impl TaskEvents {
    /// Keeping `store`'s links.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn apply(&self, message: &Message) -> Result<(), HandleError> {
        let seq = stream_position(message)?;
        if let Some(event) = decode_as::<TaskDeleted>(message) {
            let task = event
                .map_err(|e| undecodable(&e))?
                .context
                .unwrap_or_default()
                .task;
            self.store.set_target_deleted(&task, true, seq).await?;
        } else if let Some(event) = decode_as::<TaskUndeleted>(message) {
            let task = event
                .map_err(|e| undecodable(&e))?
                .context
                .unwrap_or_default()
                .task;
            self.store.set_target_deleted(&task, false, seq).await?;
        }
        Ok(())
    }
}

impl Handler for TaskEvents {
    fn handle<'a>(&'a self, message: &'a Message) -> Handling<'a> {
        Box::pin(self.apply(message))
    }
}
