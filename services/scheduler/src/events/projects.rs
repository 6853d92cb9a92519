//! Schedules within what their owners and templates may still do (see the parent module): a
//! durable consumer of the projects service's events.

use std::future::Future;
use std::pin::Pin;

use async_nats::jetstream::Message;
use taskmesh_clients::projects::task_status;
use taskmesh_contracts::projects_v1::{
    BoardDeleted, ColumnDeleted, ColumnUpdated, MemberRemoved, MemberRoleChanged, ProjectDeleted,
    Role,
};
use taskmesh_events::consumer::{HandleError, Handler};
use taskmesh_events::decode_as;

use super::{project_of, undecodable};
use crate::store::Store;
use crate::store::projects::Affected;

/// Durable consumer name.
pub const DURABLE: &str = "scheduler-projects";

/// Keeps schedules within what their owners and templates may still do.
#[derive(Debug, Clone)]
pub struct ProjectChanges {
    store: Store,
}

impl ProjectChanges {
    /// A consumer changing schedules through `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn apply(&self, message: &Message) -> Result<(), HandleError> {
        let affected = if let Some(event) = decode_as::<MemberRemoved>(message) {
            let member = event
                .map_err(|e| undecodable(&e))?
                .member
                .unwrap_or_default();
            Affected::OwnedBy {
                project: project_of(&member.name).to_owned(),
                owner: member.user,
                reason: "its owner is no longer a member of the project".to_owned(),
            }
        } else if let Some(event) = decode_as::<MemberRoleChanged>(message) {
            let member = event
                .map_err(|e| undecodable(&e))?
                .member
                .unwrap_or_default();
            if member.role() != Role::Viewer {
                return Ok(());
            }
            Affected::OwnedBy {
                project: project_of(&member.name).to_owned(),
                owner: member.user,
                reason: "its owner may only read the project now".to_owned(),
            }
        } else if let Some(event) = decode_as::<ProjectDeleted>(message) {
            let project = event
                .map_err(|e| undecodable(&e))?
                .project
                .unwrap_or_default();
            Affected::Project {
                project: project_of(&project.name).to_owned(),
                reason: "the project was deleted".to_owned(),
            }
        } else if let Some(event) = decode_as::<BoardDeleted>(message) {
            let board = event
                .map_err(|e| undecodable(&e))?
                .board
                .unwrap_or_default();
            Affected::ColumnsUnder {
                prefix: format!("{}/columns/", board.name),
                reason: "the board of its task template was deleted".to_owned(),
            }
        } else if let Some(event) = decode_as::<ColumnDeleted>(message) {
            let column = event
                .map_err(|e| undecodable(&e))?
                .column
                .unwrap_or_default();
            Affected::Column {
                column: column.name,
                reason: "the column of its task template was deleted".to_owned(),
            }
        } else if let Some(event) = decode_as::<ColumnUpdated>(message) {
            let column = event
                .map_err(|e| undecodable(&e))?
                .column
                .unwrap_or_default();
            Affected::ColumnKind {
                status: task_status(column.kind) as i32,
                column: column.name,
            }
        } else {
            return Ok(());
        };
        let changed = self.store.apply_project_change(&affected).await?;
        if changed > 0 {
            tracing::info!(?affected, changed, "schedules changed by a projects event");
        }
        Ok(())
    }
}

impl Handler for ProjectChanges {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>> {
        Box::pin(self.apply(message))
    }
}
