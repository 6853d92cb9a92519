//! The projects step of the registration saga: every new user gets a personal organization
//! `organizations/{user}` that they own. The outcome is published in the same transaction
//! (PersonalOrganizationCreated, or PersonalOrganizationFailed when the id or name is taken), so
//! identity learns it exactly when it is true. Handling the same registration twice changes nothing.

use chrono::Utc;
use taskmesh_contracts::projects_v1::{
    OrganizationCreated, PersonalOrganizationCreated, PersonalOrganizationFailed,
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

impl Store {
    /// Creates `organizations/{user}` owned by `users/{user}`, or reports why it cannot.
    pub async fn create_personal_organization(
        &self,
        context: &CallContext,
        user: &str,
        display_name: &str,
    ) -> Result<PersonalOutcome, Error> {
        let owner = format!("users/{user}");
        let name = format!("organizations/{user}");
        let mut tx = self.begin().await?;
        // Serializes against a concurrent CreateOrganization of the same name.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('organizations:' || $1))")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT owner FROM organizations WHERE id = $1")
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?;
        let name_taken: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM organizations WHERE lower(display_name) = lower($1) \
             AND delete_time IS NULL AND id <> $2)",
        )
        .bind(display_name)
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
        let failure = match existing {
            Some(existing) if existing == owner => return Ok(PersonalOutcome::AlreadyDone),
            Some(_) => Some((Reason::OrganizationExists, format!("{name} already exists"))),
            None if name_taken => Some((
                Reason::OrganizationNameTaken,
                format!("an organization named `{display_name}` already exists"),
            )),
            None => None,
        };
        if let Some((reason, message)) = failure {
            let failed = PersonalOrganizationFailed {
                user: owner.clone(),
                reason: reason.as_str().to_owned(),
                message: message.clone(),
            };
            self.emit(&mut tx, context, &name, &failed).await?;
            self.commit(tx).await?;
            return Ok(PersonalOutcome::Failed(reason.as_str().to_owned()));
        }
        let now = Utc::now();
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO organizations (uid, id, display_name, description, create_time, \
             update_time, owner) VALUES ($1, $2, $3, '', $4, $4, $5) RETURNING {}",
            super::organizations::COLUMNS
        ))
        .bind(Uuid::now_v7())
        .bind(user)
        .bind(display_name)
        .bind(now)
        .bind(&owner)
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
}
