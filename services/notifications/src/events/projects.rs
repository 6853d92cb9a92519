//! Notifications of membership changes, and projects' titles for their wording, from the projects
//! service's events.

use std::future::Future;
use std::pin::Pin;

use async_nats::jetstream::Message;
use taskmesh_contracts::projects_v1::{
    MemberAdded, MemberRemoved, MemberRoleChanged, ProjectCreated, ProjectUpdated, Role,
};
use taskmesh_events::consumer::{HandleError, Handler};
use taskmesh_events::decode_as;

use super::{Deliverer, project_of, undecodable};
use crate::domain::rules::{self, MembershipChange};
use crate::store::facts;

/// Durable consumer name.
pub const DURABLE: &str = "notifications-projects";

/// Consumes `PROJECTS`.
#[derive(Debug, Clone)]
pub struct ProjectEvents {
    deliverer: Deliverer,
}

/// A role as a person reads it.
fn role_name(role: Role) -> String {
    role.as_str_name()
        .strip_prefix("ROLE_")
        .unwrap_or("MEMBER")
        .to_lowercase()
}

impl ProjectEvents {
    /// A consumer making notifications through `deliverer`.
    pub fn new(deliverer: Deliverer) -> Self {
        Self { deliverer }
    }

    async fn apply(&self, message: &Message) -> Result<(), HandleError> {
        let title = if let Some(event) = decode_as::<ProjectCreated>(message) {
            event.map_err(|e| undecodable(&e))?.project
        } else if let Some(event) = decode_as::<ProjectUpdated>(message) {
            event.map_err(|e| undecodable(&e))?.project
        } else {
            None
        };
        if let Some(project) = title {
            let Some(mut claimed) = self.deliverer.claim(DURABLE, message).await? else {
                return Ok(());
            };
            facts::save_project(claimed.conn(), &project.name, &project.display_name).await?;
            return self.deliverer.finish(claimed, &[]).await;
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
        let Some(mut claimed) = self.deliverer.claim(DURABLE, message).await? else {
            return Ok(());
        };
        let project = project_of(&member.name);
        let conn = claimed.conn();
        let project_title = facts::project_title(conn, &project).await?;
        let actor = facts::person(conn, &actor).await?;
        let drafts: Vec<_> =
            rules::membership_changed(&change, &member.user, &project, &project_title, &actor)
                .into_iter()
                .collect();
        self.deliverer.finish(claimed, &drafts).await
    }
}

impl Handler for ProjectEvents {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>> {
        Box::pin(self.apply(message))
    }
}
