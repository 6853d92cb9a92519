//! The projects step of the registration saga: every new user gets a personal organization that
//! they own, `organizations/{user}` or, when someone else holds that id or display name, the first
//! free `organizations/{user}-{n}`. The outcome is published in the same transaction
//! (PersonalOrganizationCreated; PersonalOrganizationFailed only when 50 candidates are taken), so
//! identity learns it exactly when it is true. Handling the same registration twice changes
//! nothing. A registration identity cancelled (timed out) removes the organization again.

use chrono::Utc;
use taskmesh_contracts::projects_v1::{
    OrganizationCreated, OrganizationDeleted, PersonalOrganizationCreated,
    PersonalOrganizationFailed,
};
use taskmesh_mesh::CallContext;
use uuid::Uuid;

use super::Store;
use super::organizations::Row;
use crate::error::{Error, Reason};

/// What happened to one registration.
#[derive(Debug, PartialEq, Eq)]
pub enum PersonalOutcome {
    /// The organization was created now.
    Created,
    /// It existed already for this user (a redelivery).
    AlreadyDone,
    /// The id or the name belongs to someone else.
    Failed(String),
}

/// How many ids a personal organization tries: `<user>`, then `<user>-2` .. `<user>-<MAX>`.
const MAX_CANDIDATES: usize = 50;

impl Store {
    /// Creates the personal organization of `users/{user}`: `organizations/{user}` when that id and
    /// the display name are free, else the first free `{user}-2`, `{user}-3`, ... Someone else
    /// holding the name first cannot block a registration.
    pub async fn create_personal_organization(
        &self,
        context: &CallContext,
        user: &str,
        display_name: &str,
    ) -> Result<PersonalOutcome, Error> {
        let owner = format!("users/{user}");
        let mut tx = self.begin().await?;
        // Serializes against a concurrent CreateOrganization of the same names.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('organizations:' || $1))")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        let done: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM organizations WHERE personal_of = $1)",
        )
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
        if done {
            return Ok(PersonalOutcome::AlreadyDone);
        }
        let mut chosen = None;
        for n in 1..=MAX_CANDIDATES {
            let (id, name) = if n == 1 {
                (user.to_owned(), display_name.to_owned())
            } else {
                (format!("{user}-{n}"), format!("{display_name}-{n}"))
            };
            // The same lock as CreateOrganization's for this id (taken again for `user`: the
            // lock is re-entrant).
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('organizations:' || $1))")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            let taken: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1 \
                 OR (lower(display_name) = lower($2) AND delete_time IS NULL))",
            )
            .bind(&id)
            .bind(&name)
            .fetch_one(&mut *tx)
            .await?;
            if !taken {
                chosen = Some((id, name));
                break;
            }
        }
        let Some((id, display_name)) = chosen else {
            let reason = Reason::OrganizationExists;
            let failed = PersonalOrganizationFailed {
                user: owner.clone(),
                reason: reason.as_str().to_owned(),
                message: format!(
                    "organizations/{user} and the next {} ids are taken",
                    MAX_CANDIDATES - 1
                ),
            };
            self.emit(&mut tx, context, &format!("organizations/{user}"), &failed)
                .await?;
            self.commit(tx).await?;
            return Ok(PersonalOutcome::Failed(reason.as_str().to_owned()));
        };
        let name = format!("organizations/{id}");
        let now = Utc::now();
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO organizations (uid, id, display_name, description, create_time, \
             update_time, owner, personal_of) VALUES ($1, $2, $3, '', $4, $4, $5, $6) RETURNING {}",
            super::organizations::COLUMNS
        ))
        .bind(Uuid::now_v7())
        .bind(&id)
        .bind(&display_name)
        .bind(now)
        .bind(&owner)
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
        let organization = row.into_proto();
        let created = OrganizationCreated {
            organization: Some(organization.clone()),
        };
        self.emit(&mut tx, context, &name, &created).await?;
        let personal = PersonalOrganizationCreated {
            user: owner,
            organization: Some(organization),
        };
        self.emit(&mut tx, context, &name, &personal).await?;
        self.commit(tx).await?;
        Ok(PersonalOutcome::Created)
    }

    /// Compensates a registration identity cancelled (it timed out) after this step had already
    /// created the personal organization: the organization is removed, if nothing was put in it.
    /// Returns its name when it was removed.
    pub async fn remove_personal_organization(
        &self,
        context: &CallContext,
        user: &str,
    ) -> Result<Option<String>, Error> {
        let mut tx = self.begin().await?;
        let row: Option<Row> = sqlx::query_as(&format!(
            "DELETE FROM organizations o WHERE personal_of = $1 \
             AND NOT EXISTS (SELECT 1 FROM projects p WHERE p.organization_id = o.id) RETURNING {}",
            super::organizations::COLUMNS
        ))
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut organization = row.into_proto();
        organization.delete_time = Some(taskmesh_mesh::time::to_timestamp(Utc::now()));
        let name = organization.name.clone();
        let deleted = OrganizationDeleted {
            organization: Some(organization),
        };
        self.emit(&mut tx, context, &name, &deleted).await?;
        self.commit(tx).await?;
        Ok(Some(name))
    }
}
