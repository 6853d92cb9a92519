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

/// Consumes `PROJECTS`.
#[derive(Debug, Clone)]
pub struct ProjectEvents;

/// A role as a person reads it.
fn role_name(role: Role) -> String {
    role.as_str_name()
        .strip_prefix("ROLE_")
        .unwrap_or("MEMBER")
        .to_lowercase()
}

impl ProjectEvents {
    async fn handle_event(&self, batch: &mut Batch, message: &Message) -> Result<(), HandleError> {
        let title = if let Some(event) = decode_as::<ProjectCreated>(message) {
            event.map_err(|e| undecodable(&e))?.project
        } else if let Some(event) = decode_as::<ProjectUpdated>(message) {
            event.map_err(|e| undecodable(&e))?.project
        } else {
            None
        };
        if let Some(project) = title {
            if batch.claim(message)?.is_none() {
                return Ok(());
            }
            facts::save_project(batch.conn(), &project.name, &project.display_name).await?;
            return Ok(());
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
        let Some(event_id) = batch.claim(message)? else {
            return Ok(());
        };
        let project = project_of(&member.name);
        let project_title = facts::project_title(batch.conn(), &project).await?;
        let actor = batch.person(&actor).await?;
        let drafts: Vec<_> =
            rules::membership_changed(&change, &member.user, &project, &project_title, &actor)
                .into_iter()
                .collect();
        batch.notify(&event_id, &drafts);
        Ok(())
    }
}

impl Rule for ProjectEvents {
    const CONTEXT: &'static str = "projects";
    const DURABLE: &'static str = "notifications-projects";

    fn apply<'a>(&'a self, batch: &'a mut Batch, message: &'a Message) -> Handling<'a> {
        Box::pin(self.handle_event(batch, message))
    }
}
