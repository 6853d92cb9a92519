//! Organizations: create, read, list, update, soft delete and undelete.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use taskmesh_contracts::projects_v1::{
    Organization, OrganizationCreated, OrganizationDeleted, OrganizationUndeleted,
    OrganizationUpdated,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip::{self, FieldKind, FilterField, OrderField};
use uuid::Uuid;

use super::{
    NameChanges, Read, Store, claim_request_id, conflict, fingerprint, not_found, precondition,
    restorable, timestamp, writable,
};
use crate::domain::OrganizationName;
use crate::domain::rules::etag;
use crate::error::{Error, Reason};

pub(super) const COLUMNS: &str =
    "uid, id, display_name, description, create_time, update_time, delete_time, version, owner";

/// Fields ListOrganizations can filter on.
pub const FILTER_FIELDS: &[FilterField] = &[
    FilterField {
        name: "display_name",
        sql: "display_name",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "create_time",
        sql: "create_time",
        kind: FieldKind::Timestamp,
    },
    FilterField {
        name: "update_time",
        sql: "update_time",
        kind: FieldKind::Timestamp,
    },
];

/// Fields ListOrganizations can order by.
pub const ORDER_FIELDS: &[OrderField] = &[
    OrderField {
        name: "display_name",
        sql: "lower(display_name)",
    },
    OrderField {
        name: "create_time",
        sql: "create_time",
    },
    OrderField {
        name: "update_time",
        sql: "update_time",
    },
];

#[derive(sqlx::FromRow)]
pub(super) struct Row {
    owner: String,
    uid: Uuid,
    id: String,
    display_name: String,
    description: String,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    delete_time: Option<DateTime<Utc>>,
    version: i64,
}

impl super::Versioned for Row {
    fn version(&self) -> i64 {
        self.version
    }
    fn deleted(&self) -> bool {
        self.delete_time.is_some()
    }
}

impl Row {
    pub(super) fn into_proto(self) -> Organization {
        Organization {
            owner: self.owner,
            name: format!("organizations/{}", self.id),
            display_name: self.display_name,
            description: self.description,
            create_time: Some(timestamp(self.create_time)),
            update_time: Some(timestamp(self.update_time)),
            delete_time: self.delete_time.map(timestamp),
            etag: etag(self.version),
            uid: self.uid.to_string(),
        }
    }
}

/// A validated new organization.
#[derive(Debug)]
pub struct NewOrganization {
    /// Its id (client-chosen or generated).
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Idempotency key.
    pub request_id: Option<Uuid>,
}

async fn load(conn: &mut PgConnection, id: &str, read: Read) -> Result<Option<Row>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM organizations WHERE id = $1{}",
        read.clause()
    );
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?)
}

/// Loads a live organization for a child write, locking it against concurrent deletion.
pub(crate) async fn require_live(conn: &mut PgConnection, id: &str) -> Result<(), Error> {
    let name = format!("organizations/{id}");
    match load(conn, id, Read::ForUpdate).await? {
        None => Err(not_found(&name)),
        Some(row) if row.delete_time.is_some() => Err(precondition(
            format!("{name} is deleted"),
            Reason::ParentDeleted,
            &[("resource", name.clone())],
        )),
        Some(_) => Ok(()),
    }
}

impl Store {
    /// Creates an organization (idempotent on `request_id`).
    pub async fn create_organization(
        &self,
        context: &CallContext,
        new: NewOrganization,
    ) -> Result<Organization, Error> {
        let name = format!("organizations/{}", new.id);
        let mut tx = self.begin().await?;
        if let Some(existing) = claim_request_id(
            &mut tx,
            "CreateOrganization",
            &context.caller,
            new.request_id,
            &name,
        )
        .await?
        {
            drop(tx);
            return self
                .get_organization(&OrganizationName::parse("name", &existing)?)
                .await;
        }
        let now = Utc::now();
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO organizations (uid, id, display_name, description, create_time, update_time, \
             owner) VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING {COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(&new.id)
        .bind(&new.display_name)
        .bind(&new.description)
        .bind(now)
        .bind(&context.caller)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, &name, "organization"))?;
        let organization = row.into_proto();
        let event = OrganizationCreated {
            organization: Some(organization.clone()),
        };
        self.emit(&mut tx, context, &name, &event).await?;
        self.commit(tx).await?;
        Ok(organization)
    }

    /// Gets an organization, soft-deleted or not.
    pub async fn get_organization(&self, name: &OrganizationName) -> Result<Organization, Error> {
        let mut conn = self.pool().acquire().await?;
        load(&mut conn, &name.organization, Read::Plain)
            .await?
            .map(Row::into_proto)
            .ok_or_else(|| not_found(&name.to_string()))
    }

    /// Lists organizations.
    pub async fn list_organizations(
        &self,
        context: &CallContext,
        filter: &str,
        order_by: &str,
        show_deleted: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Organization>, String), Error> {
        let parsed = aip::parse_filter(filter, FILTER_FIELDS)?;
        let order = aip::order_by(order_by, ORDER_FIELDS, "create_time", "uid")?;
        let fp = fingerprint(&[filter, order_by, &show_deleted.to_string()]);
        let page = aip::page(page_size, page_token, &fp)?;
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT {COLUMNS} FROM organizations WHERE owner = "
        ));
        query.push_bind(context.caller.clone());
        if !show_deleted {
            query.push(" AND delete_time IS NULL");
        }
        parsed.push_and(&mut query);
        page.push_sql(&mut query, &order);
        let rows: Vec<Row> = query.build_query_as().fetch_all(self.pool()).await?;
        let (rows, token) = aip::split_page(rows, page, &fp);
        Ok((rows.into_iter().map(Row::into_proto).collect(), token))
    }

    /// Updates display name and/or description.
    pub async fn update_organization(
        &self,
        context: &CallContext,
        name: &OrganizationName,
        given_etag: &str,
        changes: NameChanges,
        mask: Vec<&'static str>,
    ) -> Result<Organization, Error> {
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        let row = writable(
            load(&mut tx, &name.organization, Read::ForUpdate).await?,
            &resource,
            given_etag,
        )?;
        let updated: Row = sqlx::query_as(&format!(
            "UPDATE organizations SET display_name = $2, description = $3, update_time = now(), \
             version = version + 1 WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(&name.organization)
        .bind(changes.display_name.unwrap_or(row.display_name))
        .bind(changes.description.unwrap_or(row.description))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, &resource, "organization"))?;
        let organization = updated.into_proto();
        let event = OrganizationUpdated {
            organization: Some(organization.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: mask.iter().map(|p| (*p).to_owned()).collect(),
            }),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(organization)
    }

    /// Soft-deletes an organization that has no live projects.
    pub async fn delete_organization(
        &self,
        context: &CallContext,
        name: &OrganizationName,
        given_etag: &str,
    ) -> Result<Organization, Error> {
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        writable(
            load(&mut tx, &name.organization, Read::ForUpdate).await?,
            &resource,
            given_etag,
        )?;
        let (live,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM projects WHERE organization_id = $1 AND delete_time IS NULL",
        )
        .bind(&name.organization)
        .fetch_one(&mut *tx)
        .await?;
        if live > 0 {
            return Err(precondition(
                format!("{resource} still has {live} project(s); delete them first"),
                Reason::OrganizationNotEmpty,
                &[("projects", live.to_string())],
            ));
        }
        let deleted: Row = sqlx::query_as(&format!(
            "UPDATE organizations SET delete_time = now(), update_time = now(), version = version + 1 \
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(&name.organization)
        .fetch_one(&mut *tx)
        .await?;
        let organization = deleted.into_proto();
        let event = OrganizationDeleted {
            organization: Some(organization.clone()),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(organization)
    }

    /// Restores a soft-deleted organization.
    pub async fn undelete_organization(
        &self,
        context: &CallContext,
        name: &OrganizationName,
        given_etag: &str,
    ) -> Result<Organization, Error> {
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        restorable(
            load(&mut tx, &name.organization, Read::ForUpdate).await?,
            &resource,
            given_etag,
        )?;
        let restored: Row = sqlx::query_as(&format!(
            "UPDATE organizations SET delete_time = NULL, update_time = now(), version = version + 1 \
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(&name.organization)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, &resource, "organization"))?;
        let organization = restored.into_proto();
        let event = OrganizationUndeleted {
            organization: Some(organization.clone()),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(organization)
    }
}
