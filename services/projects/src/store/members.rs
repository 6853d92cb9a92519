//! Members of a project and their roles. A project always keeps at least one owner.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use taskmesh_contracts::projects_v1::{
    Member, MemberAdded, MemberRemoved, MemberRoleChanged, Role,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip::{self, FieldKind, FilterField, OrderField};

use super::projects::require_live_project;
use super::{Read, Store, conflict, fingerprint, not_found, precondition, timestamp, writable};
use crate::domain::rules::etag;
use crate::domain::{MemberName, ProjectName, UserName};
use crate::error::{Error, Reason};

const COLUMNS: &str = "project_id, user_id, role, create_time, update_time, version";

/// Roles by name, for filters.
pub const ROLE_NAMES: &[(&str, i32)] = &[
    ("ROLE_VIEWER", Role::Viewer as i32),
    ("ROLE_MEMBER", Role::Member as i32),
    ("ROLE_ADMIN", Role::Admin as i32),
    ("ROLE_OWNER", Role::Owner as i32),
];

/// Fields ListMembers can filter on.
pub const FILTER_FIELDS: &[FilterField] = &[
    FilterField {
        name: "user",
        sql: "('users/' || user_id)",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "role",
        sql: "role",
        kind: FieldKind::Enum(ROLE_NAMES),
    },
];

/// Fields ListMembers can order by.
pub const ORDER_FIELDS: &[OrderField] = &[
    OrderField {
        name: "create_time",
        sql: "create_time",
    },
    OrderField {
        name: "user",
        sql: "user_id",
    },
];

#[derive(sqlx::FromRow)]
struct Row {
    project_id: String,
    user_id: String,
    role: i16,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    version: i64,
}

impl super::Versioned for Row {
    fn version(&self) -> i64 {
        self.version
    }
}

impl Row {
    fn into_proto(self) -> Member {
        Member {
            name: format!("projects/{}/members/{}", self.project_id, self.user_id),
            user: format!("users/{}", self.user_id),
            role: i32::from(self.role),
            create_time: Some(timestamp(self.create_time)),
            update_time: Some(timestamp(self.update_time)),
            etag: etag(self.version),
        }
    }
}

async fn load(
    conn: &mut PgConnection,
    name: &MemberName,
    read: Read,
) -> Result<Option<Row>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM members WHERE project_id = $1 AND user_id = $2{}",
        read.clause()
    );
    Ok(sqlx::query_as(&sql)
        .bind(&name.project)
        .bind(&name.user)
        .fetch_optional(conn)
        .await?)
}

async fn owners(conn: &mut PgConnection, project: &str) -> Result<i64, Error> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM members WHERE project_id = $1 AND role = $2")
            .bind(project)
            .bind(Role::Owner as i16)
            .fetch_one(conn)
            .await?,
    )
}

fn last_owner(resource: &str) -> Error {
    precondition(
        format!("{resource} is the last owner; make someone else owner first"),
        Reason::LastOwner,
        &[("resource", resource.to_owned())],
    )
}

impl Store {
    /// Adds a user to a project with a role.
    pub async fn create_member(
        &self,
        context: &CallContext,
        parent: &ProjectName,
        user: &UserName,
        role: Role,
    ) -> Result<Member, Error> {
        let resource = format!("{parent}/members/{}", user.user);
        let mut tx = self.begin().await?;
        require_live_project(&mut tx, &parent.project).await?;
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO members (project_id, user_id, role, create_time, update_time) \
             VALUES ($1, $2, $3, now(), now()) RETURNING {COLUMNS}"
        ))
        .bind(&parent.project)
        .bind(&user.user)
        .bind(role as i16)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, &resource, "member"))?;
        let member = row.into_proto();
        let event = MemberAdded {
            member: Some(member.clone()),
            actor: context.caller.clone(),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(member)
    }

    /// Gets a membership.
    pub async fn get_member(&self, name: &MemberName) -> Result<Member, Error> {
        let mut conn = self.pool().acquire().await?;
        load(&mut conn, name, Read::Plain)
            .await?
            .map(Row::into_proto)
            .ok_or_else(|| not_found(&name.to_string()))
    }

    /// Lists the members of a project.
    pub async fn list_members(
        &self,
        parent: &ProjectName,
        filter: &str,
        order_by: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Member>, String), Error> {
        let parsed = aip::parse_filter(filter, FILTER_FIELDS)?;
        let order = aip::order_by(order_by, ORDER_FIELDS, "create_time", "user_id")?;
        let parent_text = parent.to_string();
        let fp = fingerprint(&[&parent_text, filter, order_by]);
        let page = aip::page(page_size, page_token, &fp)?;
        self.get_project(parent).await?;
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT {COLUMNS} FROM members WHERE project_id = "
        ));
        query.push_bind(parent.project.clone());
        parsed.push_and(&mut query);
        page.push_sql(&mut query, &order);
        let rows: Vec<Row> = query.build_query_as().fetch_all(self.pool()).await?;
        let (rows, token) = aip::split_page(rows, page, &fp);
        Ok((rows.into_iter().map(Row::into_proto).collect(), token))
    }

    /// Changes a member's role; the last owner cannot step down.
    pub async fn update_member(
        &self,
        context: &CallContext,
        name: &MemberName,
        given_etag: &str,
        role: Role,
    ) -> Result<Member, Error> {
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        require_live_project(&mut tx, &name.project).await?;
        let row = writable(
            load(&mut tx, name, Read::ForUpdate).await?,
            &resource,
            given_etag,
        )?;
        let previous = Role::try_from(i32::from(row.role)).unwrap_or(Role::Unspecified);
        if previous == Role::Owner
            && role != Role::Owner
            && owners(&mut tx, &name.project).await? <= 1
        {
            return Err(last_owner(&resource));
        }
        let updated: Row = sqlx::query_as(&format!(
            "UPDATE members SET role = $3, update_time = now(), version = version + 1 \
             WHERE project_id = $1 AND user_id = $2 RETURNING {COLUMNS}"
        ))
        .bind(&name.project)
        .bind(&name.user)
        .bind(role as i16)
        .fetch_one(&mut *tx)
        .await?;
        let member = updated.into_proto();
        let event = MemberRoleChanged {
            member: Some(member.clone()),
            previous_role: previous as i32,
            actor: context.caller.clone(),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(member)
    }

    /// Removes a member; the last owner cannot be removed.
    pub async fn delete_member(
        &self,
        context: &CallContext,
        name: &MemberName,
        given_etag: &str,
    ) -> Result<(), Error> {
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        require_live_project(&mut tx, &name.project).await?;
        let row = writable(
            load(&mut tx, name, Read::ForUpdate).await?,
            &resource,
            given_etag,
        )?;
        if i32::from(row.role) == Role::Owner as i32 && owners(&mut tx, &name.project).await? <= 1 {
            return Err(last_owner(&resource));
        }
        sqlx::query("DELETE FROM members WHERE project_id = $1 AND user_id = $2")
            .bind(&name.project)
            .bind(&name.user)
            .execute(&mut *tx)
            .await?;
        let event = MemberRemoved {
            member: Some(row.into_proto()),
            actor: context.caller.clone(),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await
    }
}
