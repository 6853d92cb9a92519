//! Who may do what. A project's members have a role (viewer < member < admin < owner); an
//! organization has one owner. Every handler checks the caller's right before it looks anything
//! up, so a foreign resource and a missing one answer alike: PERMISSION_DENIED.

use taskmesh_contracts::projects_v1::Role;
use taskmesh_mesh::CallContext;

use super::Store;
use crate::error::Error;

impl Store {
    /// The caller's role in the project, or PERMISSION_DENIED when it is below `least` (or the
    /// caller is no member, or there is no such project).
    pub(crate) async fn require(
        &self,
        context: &CallContext,
        project: &str,
        least: Role,
    ) -> Result<Role, Error> {
        let user = context.caller.trim_start_matches("users/");
        let role: Option<i16> =
            sqlx::query_scalar("SELECT role FROM members WHERE project_id = $1 AND user_id = $2")
                .bind(project)
                .bind(user)
                .fetch_optional(self.pool())
                .await?;
        at_least(context, project, role, least)
    }

    /// PERMISSION_DENIED unless the caller owns the organization (or there is no such one).
    pub(crate) async fn require_owner(
        &self,
        context: &CallContext,
        organization: &str,
    ) -> Result<(), Error> {
        let owns: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1 AND owner = $2)",
        )
        .bind(organization)
        .bind(&context.caller)
        .fetch_one(self.pool())
        .await?;
        if owns {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "{} does not own organizations/{organization}",
                context.caller
            )))
        }
    }
}

/// The role (as stored) when it is at least `least`; PERMISSION_DENIED when it is below, or the
/// caller is no member (`None`).
pub(crate) fn at_least(
    context: &CallContext,
    project: &str,
    role: Option<i16>,
    least: Role,
) -> Result<Role, Error> {
    match role.and_then(|r| Role::try_from(i32::from(r)).ok()) {
        Some(role) if role as i32 >= least as i32 => Ok(role),
        Some(_) => Err(Error::PermissionDenied(format!(
            "{} needs the {} role in projects/{project}",
            context.caller,
            least.as_str_name()
        ))),
        None => Err(Error::PermissionDenied(format!(
            "{} is not a member of projects/{project}",
            context.caller
        ))),
    }
}
