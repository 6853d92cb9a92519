//! Making notifications: each draft becomes a row in its recipient's inbox (numbered under a lock
//! on the recipient, so numbers commit in order), and, in the same transaction, the email and the
//! webhook deliveries its recipient's settings ask for. A draft whose `source` its recipient
//! already has makes nothing: each cause makes each notification once.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use taskmesh_contracts::notifications_v1::Channel;
use taskmesh_mesh::aip::{self, FieldKind, FilterField};

use crate::domain::clock::{self, LocalTimeOfDay};
use crate::domain::rules::Draft;
use crate::domain::{KIND_NAMES, Preferences, render};

/// The channel a notification is published on to the processes' streams.
pub const CHANNEL: &str = "taskmesh_inbox";

/// What making notifications needs besides the drafts.
#[derive(Debug, Clone)]
pub struct Making {
    /// The URL users reach the platform at (links in emails).
    pub public_url: String,
    /// When the daily agenda is due on each user's clock (for users first seen here).
    pub agenda_time: LocalTimeOfDay,
}

/// What was queued, so the caller can wake the loops after the commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Made {
    /// Notifications made.
    pub notifications: usize,
    /// Emails queued.
    pub emails: usize,
    /// Webhook deliveries queued.
    pub deliveries: usize,
}

impl std::ops::AddAssign for Made {
    fn add_assign(&mut self, other: Self) {
        self.notifications += other.notifications;
        self.emails += other.emails;
        self.deliveries += other.deliveries;
    }
}

/// Fields a webhook filter may name.
pub const WEBHOOK_FILTER_FIELDS: &[FilterField] = &[
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
        name: "recipient",
        sql: "('users/' || user_id)",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "actor",
        sql: "actor",
        kind: FieldKind::Text,
    },
];

#[derive(sqlx::FromRow)]
struct Recipient {
    seq: i64,
    email: String,
    time_zone: String,
    channels: serde_json::Value,
    quiet_start: Option<i16>,
    quiet_end: Option<i16>,
}

/// The user id of `users/{user}`.
pub fn user_id(name: &str) -> &str {
    name.strip_prefix("users/").unwrap_or(name)
}

/// The project id of `projects/{project}`.
pub fn project_id(name: &str) -> &str {
    name.strip_prefix("projects/").unwrap_or(name)
}

/// Makes the notification of `draft` unless its recipient has one from `source`.
pub async fn make(
    conn: &mut PgConnection,
    draft: &Draft,
    source: &str,
    making: &Making,
    now: DateTime<Utc>,
) -> Result<Made, sqlx::Error> {
    let user = user_id(&draft.recipient);
    if user.is_empty() {
        return Ok(Made::default());
    }
    let first_agenda = clock::next_local(now, chrono_tz::Tz::UTC, making.agenda_time);
    let recipient: Recipient = sqlx::query_as(
        "INSERT INTO users (user_id, inbox_seq, next_agenda_time) VALUES ($1, 1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET inbox_seq = users.inbox_seq + 1 \
         RETURNING inbox_seq AS seq, email, time_zone, channels, quiet_start, quiet_end",
    )
    .bind(user)
    .bind(first_agenda)
    .fetch_one(&mut *conn)
    .await?;
    let preferences = Preferences::from_json(&recipient.channels);
    let in_app = preferences.enabled(draft.kind, Channel::InApp);
    let email = preferences.enabled(draft.kind, Channel::Email) && !recipient.email.is_empty();
    let webhook = preferences.enabled(draft.kind, Channel::Webhook) && !draft.project.is_empty();
    if !(in_app || email || webhook) {
        return Ok(Made::default());
    }
    let id = taskmesh_mesh::aip::new_id();
    let link = render::link(&draft.resource);
    let inserted = sqlx::query(
        "INSERT INTO notifications (user_id, seq, id, source, kind, title, body, resource, actor, \
         actor_display_name, link, project_id, in_app, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (user_id, source) DO NOTHING",
    )
    .bind(user)
    .bind(recipient.seq)
    .bind(&id)
    .bind(source)
    .bind(draft.kind as i16)
    .bind(&draft.title)
    .bind(&draft.body)
    .bind(&draft.resource)
    .bind(&draft.actor.name)
    .bind(&draft.actor.display_name)
    .bind(&link)
    .bind(project_id(&draft.project))
    .bind(in_app)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(Made::default());
    }
    let name = format!("users/{user}/notifications/{id}");
    let rendered = render::Rendered {
        name: &name,
        kind: draft.kind,
        title: &draft.title,
        body: &draft.body,
        resource: &draft.resource,
        actor: &draft.actor.name,
        project: &draft.project,
        create_time: now,
    };
    let mut made = Made {
        notifications: 1,
        ..Made::default()
    };
    if email {
        let not_before = match (
            clock::zone(&recipient.time_zone),
            recipient.quiet_start,
            recipient.quiet_end,
        ) {
            (Some(tz), Some(start), Some(end)) => {
                clock::quiet_until(now, tz, start, end).unwrap_or(now)
            }
            _ => now,
        };
        let mail = render::email(&rendered, &draft.recipient, &making.public_url);
        sqlx::query(
            "INSERT INTO emails (notification_id, user_id, to_address, subject, text_body, \
             html_body, message_id, next_attempt_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(user)
        .bind(&recipient.email)
        .bind(&mail.subject)
        .bind(&mail.text)
        .bind(&mail.html)
        .bind(render::message_id(&id))
        .bind(not_before)
        .execute(&mut *conn)
        .await?;
        made.emails = 1;
    }
    if webhook {
        made.deliveries = queue_webhooks(conn, draft, user, recipient.seq, &id, &rendered).await?;
    }
    if in_app {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(user)
            .execute(&mut *conn)
            .await?;
    }
    Ok(made)
}

/// Queues the notification for each active webhook of its project whose filter it passes.
async fn queue_webhooks(
    conn: &mut PgConnection,
    draft: &Draft,
    user: &str,
    seq: i64,
    id: &str,
    rendered: &render::Rendered<'_>,
) -> Result<usize, sqlx::Error> {
    let project = project_id(&draft.project);
    let hooks: Vec<(String, String)> =
        sqlx::query_as("SELECT webhook_id, filter FROM webhooks WHERE project_id = $1 AND active")
            .bind(project)
            .fetch_all(&mut *conn)
            .await?;
    if hooks.is_empty() {
        return Ok(0);
    }
    let payload = render::webhook_payload(rendered, &draft.recipient);
    let mut queued = 0;
    for (webhook, filter) in hooks {
        if !filter.trim().is_empty() {
            // Checked when the webhook was saved; one that no longer parses matches nothing.
            let Ok(parsed) = aip::Filter::parse(&filter, WEBHOOK_FILTER_FIELDS) else {
                continue;
            };
            let mut query = QueryBuilder::<Postgres>::new(
                "SELECT EXISTS (SELECT 1 FROM notifications WHERE user_id = ",
            );
            query.push_bind(user.to_owned());
            query.push(" AND seq = ");
            query.push_bind(seq);
            parsed.push_and(&mut query);
            query.push(")");
            let passes: bool = query.build_query_scalar().fetch_one(&mut *conn).await?;
            if !passes {
                continue;
            }
        }
        sqlx::query(
            "INSERT INTO deliveries (project_id, webhook_id, delivery_id, notification_id, kind, \
             message_id, payload, next_attempt_time) VALUES ($1, $2, $3, $4, $5, $6, $7, now()) \
             ON CONFLICT DO NOTHING",
        )
        .bind(project)
        .bind(&webhook)
        .bind(taskmesh_mesh::aip::new_id())
        .bind(id)
        .bind(draft.kind as i16)
        .bind(render::webhook_message_id(id))
        .bind(&payload)
        .execute(&mut *conn)
        .await?;
        queued += 1;
    }
    Ok(queued)
}
