//! Projects: create (the caller becomes owner), read, list, update, soft delete and undelete. The
//! number of live projects per organization (or per creator, for personal projects) is limited.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use taskmesh_contracts::projects_v1::{
    Member, MemberAdded, Project, ProjectCreated, ProjectDeleted, ProjectUndeleted, ProjectUpdated,
    Role,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip::{self, FieldKind, FilterField, OrderField};
use uuid::Uuid;

use super::organizations::require_live;
use super::{
    NameChanges, Read, Store, claim_request_id, conflict, fingerprint, not_found, precondition,
    restorable, timestamp, writable,
};
use crate::domain::ProjectName;
use crate::domain::rules::etag;
use crate::error::{Error, Reason};

const COLUMNS: &str = "uid, id, organization_id, display_name, description, creator, \
                       create_time, update_time, delete_time, version";

/// Fields ListProjects can filter on.
pub const FILTER_FIELDS: &[FilterField] = &[
    FilterField {
        name: "display_name",
        sql: "display_name",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "organization",
        sql: "coalesce('organizations/' || organization_id, '')",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "creator",
        sql: "creator",
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

/// Fields ListProjects can order by.
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

/// A project with the role of the user who reads it; no row for a non-member.
const GET_AS_MEMBER: &str = "SELECT m.role, p.uid, p.id, p.organization_id, p.display_name, \
     p.description, p.creator, p.create_time, p.update_time, p.delete_time, p.version \
     FROM members m JOIN projects p ON p.id = m.project_id \
     WHERE m.project_id = $1 AND m.user_id = $2";

#[derive(sqlx::FromRow)]
struct MemberRow {
    role: i16,
    #[sqlx(flatten)]
    project: Row,
}

#[derive(sqlx::FromRow)]
struct Row {
    uid: Uuid,
    id: String,
    organization_id: Option<String>,
    display_name: String,
    description: String,
    creator: String,
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
    fn into_proto(self) -> Project {
        Project {
            name: format!("projects/{}", self.id),
            display_name: self.display_name,
            description: self.description,
            organization: self
                .organization_id
                .map(|o| format!("organizations/{o}"))
                .unwrap_or_default(),
            create_time: Some(timestamp(self.create_time)),
            update_time: Some(timestamp(self.update_time)),
            delete_time: self.delete_time.map(timestamp),
            etag: etag(self.version),
            uid: self.uid.to_string(),
            creator: self.creator,
        }
    }
}

/// A validated new project.
#[derive(Debug)]
pub struct NewProject {
    /// Its id.
    pub id: String,
    /// Owning organization id, if any.
    pub organization: Option<String>,
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Idempotency key.
    pub request_id: Option<Uuid>,
}

async fn load(conn: &mut PgConnection, id: &str, read: Read) -> Result<Option<Row>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM projects WHERE id = $1{}",
        read.clause()
    );
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?)
}

/// Checks that a project exists and is live, locking it so that child writes (and their limits) serialize per project.
pub(crate) async fn require_live_project(conn: &mut PgConnection, id: &str) -> Result<(), Error> {
    let name = format!("projects/{id}");
    let row: Option<(Option<DateTime<Utc>>,)> =
        sqlx::query_as("SELECT delete_time FROM projects WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    match row {
        None => Err(not_found(&name)),
        Some((Some(_),)) => Err(precondition(
            format!("{name} is deleted"),
            Reason::ParentDeleted,
            &[("resource", name.clone())],
        )),
        Some((None,)) => Ok(()),
    }
}

/// Serializes project creation per organization or creator, then enforces the limit.
async fn check_project_limit(
    conn: &mut PgConnection,
    organization: Option<&str>,
    creator: &str,
    limit: i64,
) -> Result<(), Error> {
    let live: i64 = match organization {
        Some(org) => {
            require_live(&mut *conn, org).await?;
            sqlx::query_scalar(
                "SELECT count(*) FROM projects WHERE organization_id = $1 AND delete_time IS NULL",
            )
            .bind(org)
            .fetch_one(&mut *conn)
            .await?
        }
        None => {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('projects:creator:' || $1))")
                .bind(creator)
                .execute(&mut *conn)
                .await?;
            sqlx::query_scalar(
                "SELECT count(*) FROM projects \
                 WHERE organization_id IS NULL AND creator = $1 AND delete_time IS NULL",
            )
            .bind(creator)
            .fetch_one(&mut *conn)
            .await?
        }
    };
    if live >= limit {
        let scope = organization
            .map(|o| format!("organizations/{o}"))
            .unwrap_or_else(|| format!("the personal projects of {creator}"));
        return Err(precondition(
            format!("{scope} already has {live} projects, the limit is {limit}"),
            Reason::ProjectLimitReached,
            &[("limit", limit.to_string()), ("scope", scope)],
        ));
    }
    Ok(())
}

impl Store {
    /// Creates a project and makes the caller its owner (idempotent on `request_id`).
    pub async fn create_project(
        &self,
        context: &CallContext,
        new: NewProject,
    ) -> Result<Project, Error> {
        let name = format!("projects/{}", new.id);
        let mut tx = self.begin().await?;
        if let Some(existing) = claim_request_id(
            &mut tx,
            "CreateProject",
            &context.caller,
            new.request_id,
            &name,
        )
        .await?
        {
            drop(tx);
            return self
                .get_project(&ProjectName::parse("name", &existing)?)
                .await;
        }
        check_project_limit(
            &mut tx,
            new.organization.as_deref(),
            &context.caller,
            self.limits().max_projects_per_organization,
        )
        .await?;
        let now = Utc::now();
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO projects (uid, id, organization_id, display_name, description, creator, \
             create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(&new.id)
        .bind(&new.organization)
        .bind(&new.display_name)
        .bind(&new.description)
        .bind(&context.caller)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, &name, "project"))?;
        let project = row.into_proto();
        let owner = context.caller.trim_start_matches("users/").to_owned();
        sqlx::query(
            "INSERT INTO members (project_id, user_id, role, create_time, update_time) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(&new.id)
        .bind(&owner)
        .bind(Role::Owner as i16)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let created = ProjectCreated {
            project: Some(project.clone()),
        };
        self.emit(&mut tx, context, &name, &created).await?;
        let member_name = format!("{name}/members/{owner}");
        let added = MemberAdded {
            member: Some(Member {
                name: member_name.clone(),
                user: context.caller.clone(),
                role: Role::Owner as i32,
                create_time: Some(timestamp(now)),
                update_time: Some(timestamp(now)),
                etag: etag(1),
            }),
            actor: context.caller.clone(),
        };
        self.emit(&mut tx, context, &member_name, &added).await?;
        self.commit(tx).await?;
        Ok(project)
    }

    /// Gets a project, soft-deleted or not.
    pub async fn get_project(&self, name: &ProjectName) -> Result<Project, Error> {
        let mut conn = self.pool().acquire().await?;
        load(&mut conn, &name.project, Read::Plain)
            .await?
            .map(Row::into_proto)
            .ok_or_else(|| not_found(&name.to_string()))
    }

    /// Gets a project, soft-deleted or not, when the caller's role in it is at least `least`
    /// (PERMISSION_DENIED otherwise, and for a project that does not exist): the role and the
    /// project in one query.
    pub async fn get_project_as(
        &self,
        context: &CallContext,
        name: &ProjectName,
        least: Role,
    ) -> Result<Project, Error> {
        let found: Option<MemberRow> = sqlx::query_as(GET_AS_MEMBER)
            .bind(&name.project)
            .bind(context.caller.trim_start_matches("users/"))
            .fetch_optional(self.pool())
            .await?;
        let role = found.as_ref().map(|row| row.role);
        super::access::at_least(context, &name.project, role, least)?;
        found
            .map(|row| row.project.into_proto())
            .ok_or_else(|| not_found(&name.to_string()))
    }

    /// Lists projects.
    pub async fn list_projects(
        &self,
        context: &CallContext,
        filter: &str,
        order_by: &str,
        show_deleted: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Project>, String), Error> {
        let parsed = aip::parse_filter(filter, FILTER_FIELDS)?;
        let order = aip::order_by(order_by, ORDER_FIELDS, "create_time", "uid")?;
        let fp = fingerprint(&[filter, order_by, &show_deleted.to_string()]);
        let page = aip::page(page_size, page_token, &fp)?;
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT {COLUMNS} FROM projects WHERE id IN \
                 (SELECT project_id FROM members WHERE user_id = "
        ));
        query.push_bind(context.caller.trim_start_matches("users/").to_owned());
        query.push(")");
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
    pub async fn update_project(
        &self,
        context: &CallContext,
        name: &ProjectName,
        given_etag: &str,
        changes: NameChanges,
        mask: Vec<&'static str>,
    ) -> Result<Project, Error> {
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        let row = writable(
            load(&mut tx, &name.project, Read::ForUpdate).await?,
            &resource,
            given_etag,
        )?;
        let updated: Row = sqlx::query_as(&format!(
            "UPDATE projects SET display_name = $2, description = $3, update_time = now(), \
             version = version + 1 WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(&name.project)
        .bind(changes.display_name.unwrap_or(row.display_name))
        .bind(changes.description.unwrap_or(row.description))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, &resource, "project"))?;
        let project = updated.into_proto();
        let event = ProjectUpdated {
            project: Some(project.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: mask.iter().map(|p| (*p).to_owned()).collect(),
            }),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(project)
    }

    /// Soft-deletes a project.
    pub async fn delete_project(
        &self,
        context: &CallContext,
        name: &ProjectName,
        given_etag: &str,
    ) -> Result<Project, Error> {
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        writable(
            load(&mut tx, &name.project, Read::ForUpdate).await?,
            &resource,
            given_etag,
        )?;
        let deleted: Row = sqlx::query_as(&format!(
            "UPDATE projects SET delete_time = now(), update_time = now(), version = version + 1 \
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(&name.project)
        .fetch_one(&mut *tx)
        .await?;
        let project = deleted.into_proto();
        let event = ProjectDeleted {
            project: Some(project.clone()),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(project)
    }

    /// Restores a soft-deleted project, within the project limit of its organization.
    pub async fn undelete_project(
        &self,
        context: &CallContext,
        name: &ProjectName,
        given_etag: &str,
    ) -> Result<Project, Error> {
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        let row = restorable(
            load(&mut tx, &name.project, Read::ForUpdate).await?,
            &resource,
            given_etag,
        )?;
        check_project_limit(
            &mut tx,
            row.organization_id.as_deref(),
            &row.creator,
            self.limits().max_projects_per_organization,
        )
        .await?;
        let restored: Row = sqlx::query_as(&format!(
            "UPDATE projects SET delete_time = NULL, update_time = now(), version = version + 1 \
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(&name.project)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, &resource, "project"))?;
        let project = restored.into_proto();
        let event = ProjectUndeleted {
            project: Some(project.clone()),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(project)
    }
}
