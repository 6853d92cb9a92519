//! The notifications database. Reading and marking inboxes live here; making notifications (and
//! queuing their email and webhook deliveries in the same transaction) is [`inbox`]; the read
//! model of users, projects and tasks is [`facts`]; settings, webhooks and the delivery queues
//! have their own modules.

pub mod facts;
pub mod inbox;
pub mod outgoing;
pub mod settings;
pub mod webhooks;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder};
use taskmesh_contracts::notifications_v1::{Notification, NotificationKind};
use taskmesh_mesh::aip::{self, FieldKind, FilterField, OrderField};
use taskmesh_mesh::time::to_timestamp as ts;

use crate::domain::{KIND_NAMES, render};
use crate::error::Error;

/// Handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

const COLUMNS: &str = "user_id, seq, id, kind, title, body, resource, actor, actor_display_name, \
                       link, project_id, read_time, create_time";

/// One notification row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    /// Recipient's user id.
    pub user_id: String,
    /// Place in the user's inbox.
    pub seq: i64,
    /// Notification id.
    pub id: String,
    /// `NotificationKind` number.
    pub kind: i16,
    /// One line.
    pub title: String,
    /// More.
    pub body: String,
    /// What it is about.
    pub resource: String,
    /// Who did it.
    pub actor: String,
    /// Their name then.
    pub actor_display_name: String,
    /// REST path.
    pub link: String,
    /// Project id or empty.
    pub project_id: String,
    /// When read.
    pub read_time: Option<DateTime<Utc>>,
    /// When made.
    pub create_time: DateTime<Utc>,
}

impl Row {
    /// `users/{user}/notifications/{id}`.
    pub fn name(&self) -> String {
        format!("users/{}/notifications/{}", self.user_id, self.id)
    }

    /// The kind.
    pub fn kind(&self) -> NotificationKind {
        NotificationKind::try_from(i32::from(self.kind)).unwrap_or(NotificationKind::Unspecified)
    }

    /// `projects/{project}` or empty.
    pub fn project(&self) -> String {
        if self.project_id.is_empty() {
            String::new()
        } else {
            format!("projects/{}", self.project_id)
        }
    }

    /// As the API shows it.
    pub fn into_proto(self) -> Notification {
        Notification {
            name: self.name(),
            kind: self.kind() as i32,
            project: self.project(),
            title: self.title,
            body: self.body,
            link: if self.link.is_empty() {
                render::link(&self.resource)
            } else {
                self.link
            },
            resource: self.resource,
            actor: self.actor,
            actor_display_name: self.actor_display_name,
            read: self.read_time.is_some(),
            create_time: Some(ts(self.create_time)),
            read_time: self.read_time.map(ts),
            cursor: self.seq.to_string(),
        }
    }
}

/// Fields a list filter may name.
const FILTER_FIELDS: &[FilterField] = &[
    FilterField {
        name: "read",
        sql: "(read_time IS NOT NULL)",
        kind: FieldKind::Bool,
    },
    FilterField {
        name: "kind",
        sql: "kind",
        kind: FieldKind::Enum(KIND_NAMES),
    },
    FilterField {
        name: "resource",
        sql: "resource",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "project",
        sql: "(CASE WHEN project_id = '' THEN '' ELSE 'projects/' || project_id END)",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "actor",
        sql: "actor",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "create_time",
        sql: "create_time",
        kind: FieldKind::Timestamp,
    },
];

const ORDER_FIELDS: &[OrderField] = &[OrderField {
    name: "create_time",
    sql: "seq",
}];

/// One page of an inbox.
#[derive(Debug)]
pub struct Page {
    /// The notifications.
    pub notifications: Vec<Notification>,
    /// Token of the next page.
    pub next_page_token: String,
    /// Unread in the whole inbox.
    pub unread: i64,
}

impl Store {
    /// A store over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One page of `user`'s inbox.
    pub async fn list(
        &self,
        user: &str,
        filter: &str,
        order_by: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page, Error> {
        let parsed = aip::parse_filter(filter, FILTER_FIELDS)?;
        let order = aip::order_by(order_by, ORDER_FIELDS, "create_time desc", "seq")?;
        let fp = aip::fingerprint(&[user, filter, order_by]);
        let page = aip::page(page_size, page_token, &fp)?;
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT {COLUMNS} FROM notifications WHERE in_app AND user_id = "
        ));
        query.push_bind(user.to_owned());
        parsed.push_and(&mut query);
        page.push_sql(&mut query, &order);
        let rows: Vec<Row> = query.build_query_as().fetch_all(&self.pool).await?;
        let (rows, next_page_token) = aip::split_page(rows, page, &fp);
        let unread = self.unread(user).await?;
        Ok(Page {
            notifications: rows.into_iter().map(Row::into_proto).collect(),
            next_page_token,
            unread,
        })
    }

    /// How many of `user`'s notifications are unread.
    pub async fn unread(&self, user: &str) -> Result<i64, Error> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM notifications WHERE user_id = $1 AND in_app AND read_time IS NULL",
        )
        .bind(user)
        .fetch_one(&self.pool)
        .await?)
    }

    /// One notification of `user`.
    pub async fn get(&self, user: &str, id: &str) -> Result<Notification, Error> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND id = $2 AND in_app"
        ))
        .bind(user)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Row::into_proto)
            .ok_or_else(|| Error::NotFound(format!("users/{user}/notifications/{id}")))
    }

    /// Marks one notification read, or unread again.
    pub async fn mark(&self, user: &str, id: &str, read: bool) -> Result<Notification, Error> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE notifications SET read_time = CASE WHEN $3 THEN coalesce(read_time, now()) END \
             WHERE user_id = $1 AND id = $2 AND in_app RETURNING {COLUMNS}"
        ))
        .bind(user)
        .bind(id)
        .bind(read)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Row::into_proto)
            .ok_or_else(|| Error::NotFound(format!("users/{user}/notifications/{id}")))
    }

    /// Marks all of `user`'s notifications read, up to `cursor` when given; returns how many
    /// were marked and how many are still unread.
    pub async fn mark_all(&self, user: &str, cursor: Option<i64>) -> Result<(i64, i64), Error> {
        let marked = sqlx::query(
            "UPDATE notifications SET read_time = now() \
             WHERE user_id = $1 AND in_app AND read_time IS NULL AND seq <= $2",
        )
        .bind(user)
        .bind(cursor.unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?
        .rows_affected();
        let unread = self.unread(user).await?;
        Ok((i64::try_from(marked).unwrap_or(i64::MAX), unread))
    }

    /// `user`'s in-app notifications after `cursor`, oldest first, at most `limit`.
    pub async fn after(&self, user: &str, cursor: i64, limit: i64) -> Result<Vec<Row>, Error> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND seq > $2 AND in_app \
             ORDER BY seq LIMIT $3"
        ))
        .bind(user)
        .bind(cursor)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The cursor of `user`'s newest notification (0 for none).
    pub async fn newest_cursor(&self, user: &str) -> Result<i64, Error> {
        Ok(
            sqlx::query_scalar("SELECT inbox_seq FROM users WHERE user_id = $1")
                .bind(user)
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0),
        )
    }
}
