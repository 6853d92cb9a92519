//! Notifications of membership changes, and projects' titles for their wording, from the projects
//! service's events.

use async_nats::jetstream::Message;
use taskmesh_contracts::projects_v1::{
    MemberAdded, MemberRemoved, MemberRoleChanged, ProjectCreated, ProjectUpdated, Role,
};
use taskmesh_events::consumer::{HandleError, Handling};
use taskmesh_events::decode_as;

use super::{Batch, Rule, project_of, undecodable};
use crate::domain::rules::{self, MembershipChange};
use crate::store::facts;
use crate::store::inbox::Making;

/// Durable consumer name.
pub const DURABLE: &str = "notifications-projects";

/// Consumes `PROJECTS`.
#[derive(Debug, Clone)]
pub struct ProjectEvents {
    making: Making,
}

/// A role as a person reads it.
fn role_name(role: Role) -> String {
    role.as_str_name()
        .strip_prefix("ROLE_")
        .unwrap_or("MEMBER")
        .to_lowercase()
}

impl ProjectEvents {
    /// A consumer making notifications through `making`.
    pub fn new(making: Making) -> Self {
        Self { making }
    }

    async fn handle_event(&self, batch: &mut Batch, message: &Message) -> Result<(), HandleError> {
        let title = if let Some(event) = decode_as::<ProjectCreated>(message) {
            event.map_err(|e| undecodable(&e))?.project
        } else if let Some(event) = decode_as::<ProjectUpdated>(message) {
            event.map_err(|e| undecodable(&e))?.project
        } else {
            None
        };
        if let Some(project) = title {
            let Some(event_id) = batch.claim(DURABLE, message).await? else {
                return Ok(());
            };
            facts::save_project(batch.conn(), &project.name, &project.display_name).await?;
            return batch.notify(&event_id, &[], &self.making).await;
        }
        let (member, actor, change) = if let Some(event) = decode_as::<MemberAdded>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            let member = event.member.unwrap_or_default();
            let change = MembershipChange::Added(role_name(member.role()));
            (member, event.actor, change)
        } else if let Some(event) = decode_as::<MemberRemoved>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            (
                event.member.unwrap_or_default(),
                event.actor,
                MembershipChange::Removed,
            )
        } else if let Some(event) = decode_as::<MemberRoleChanged>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            let member = event.member.unwrap_or_default();
            let change = MembershipChange::RoleChanged(role_name(member.role()));
            (member, event.actor, change)
        } else {
            return Ok(());
        };
        let Some(event_id) = batch.claim(DURABLE, message).await? else {
            return Ok(());
        };
        let project = project_of(&member.name);
        let conn = batch.conn();
        let project_title = facts::project_title(conn, &project).await?;
        let actor = facts::person(conn, &actor).await?;
        let drafts: Vec<_> =
            rules::membership_changed(&change, &member.user, &project, &project_title, &actor)
                .into_iter()
                .collect();
        batch.notify(&event_id, &drafts, &self.making).await
    }
}

impl Rule for ProjectEvents {
    fn apply<'a>(&'a self, batch: &'a mut Batch, message: &'a Message) -> Handling<'a> {
        Box::pin(self.handle_event(batch, message))
    }
}
