//! Making notifications: each draft becomes a row in its recipient's inbox (numbered under a lock
//! on the recipient, so numbers commit in order), and, in the same transaction, the email and the
//! webhook deliveries its recipient's settings ask for. A draft whose `source` its recipient
//! already has makes nothing: each cause makes each notification once.

use std::collections::{BTreeMap, HashMap, HashSet};

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
    user_id: String,
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
    make_all(conn, &[(draft.clone(), source.to_owned())], making, now).await
}

/// One notification on its way into an inbox.
struct Entry<'a> {
    draft: &'a Draft,
    source: &'a str,
    user: &'a str,
    seq: i64,
    id: String,
    in_app: bool,
    email: bool,
    webhook: bool,
}

/// Makes the notifications of `drafts` (each with its source) that their recipients do not have
/// yet, with their emails and webhook deliveries: a few statements for all of them. Recipients
/// are numbered (and so locked) in the order of their ids, so concurrent callers wait for each
/// other rather than deadlock.
pub async fn make_all(
    conn: &mut PgConnection,
    drafts: &[(Draft, String)],
    making: &Making,
    now: DateTime<Utc>,
) -> Result<Made, sqlx::Error> {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for (draft, _) in drafts {
        let user = user_id(&draft.recipient);
        if !user.is_empty() {
            *counts.entry(user).or_default() += 1;
        }
    }
    if counts.is_empty() {
        return Ok(Made::default());
    }
    // Each recipient's number goes up by how many drafts they have here; theirs are the numbers
    // below it.
    let first_agenda = clock::next_local(now, chrono_tz::Tz::UTC, making.agenda_time);
    let users: Vec<&str> = counts.keys().copied().collect();
    let added: Vec<i64> = counts.values().copied().collect();
    let recipients: Vec<Recipient> = sqlx::query_as(
        "INSERT INTO users (user_id, inbox_seq, next_agenda_time) \
         SELECT u, n, $3 FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS t(u, n, i) \
         ORDER BY i \
         ON CONFLICT (user_id) DO UPDATE SET inbox_seq = users.inbox_seq + excluded.inbox_seq \
         RETURNING user_id, inbox_seq AS seq, email, time_zone, channels, quiet_start, quiet_end",
    )
    .bind(&users)
    .bind(&added)
    .bind(first_agenda)
    .fetch_all(&mut *conn)
    .await?;
    let mut next: HashMap<&str, (i64, &Recipient, Preferences)> = HashMap::new();
    for recipient in &recipients {
        let count = counts.get(recipient.user_id.as_str()).copied().unwrap_or(0);
        let preferences = Preferences::from_json(&recipient.channels);
        next.insert(
            recipient.user_id.as_str(),
            (recipient.seq - count + 1, recipient, preferences),
        );
    }
    let mut entries = Vec::new();
    for (draft, source) in drafts {
        let user = user_id(&draft.recipient);
        let Some((seq, recipient, preferences)) = next.get_mut(user) else {
            continue;
        };
        let number = *seq;
        *seq += 1;
        let in_app = preferences.enabled(draft.kind, Channel::InApp);
        let email = preferences.enabled(draft.kind, Channel::Email) && !recipient.email.is_empty();
        let webhook =
            preferences.enabled(draft.kind, Channel::Webhook) && !draft.project.is_empty();
        if in_app || email || webhook {
            entries.push(Entry {
                draft,
                source,
                user,
                seq: number,
                id: taskmesh_mesh::aip::new_id(),
                in_app,
                email,
                webhook,
            });
        }
    }
    let recipients: HashMap<&str, &Recipient> =
        recipients.iter().map(|r| (r.user_id.as_str(), r)).collect();
    let emails = Emails::of(&entries, &recipients, making, now);
    let (made_now, emailed) = insert(conn, &entries, emails, now).await?;
    let entries: Vec<Entry<'_>> = entries
        .into_iter()
        .filter(|e| made_now.contains(&e.id))
        .collect();
    let mut made = Made {
        notifications: entries.len(),
        emails: emailed,
        ..Made::default()
    };
    if !entries.is_empty() {
        made.deliveries = queue_webhooks(conn, &entries, now).await?;
    }
    Ok(made)
}

/// The emails of some entries, column by column.
#[derive(Default)]
struct Emails {
    text: [Vec<String>; 7],
    not_before: Vec<DateTime<Utc>>,
}

impl Emails {
    /// The emails of `entries` that ask for one, each held until its recipient's quiet hours end.
    fn of(
        entries: &[Entry<'_>],
        recipients: &HashMap<&str, &Recipient>,
        making: &Making,
        now: DateTime<Utc>,
    ) -> Self {
        let mut emails = Self::default();
        for entry in entries.iter().filter(|e| e.email) {
            let Some(recipient) = recipients.get(entry.user) else {
                continue;
            };
            let when = match (
                clock::zone(&recipient.time_zone),
                recipient.quiet_start,
                recipient.quiet_end,
            ) {
                (Some(tz), Some(start), Some(end)) => {
                    clock::quiet_until(now, tz, start, end).unwrap_or(now)
                }
                _ => now,
            };
            let name = entry.name();
            let mail = render::email(
                &entry.rendered(&name, now),
                &entry.draft.recipient,
                &making.public_url,
            );
            for (column, value) in emails.text.iter_mut().zip([
                entry.id.clone(),
                entry.user.to_owned(),
                recipient.email.clone(),
                mail.subject,
                mail.text,
                mail.html,
                render::message_id(&entry.id),
            ]) {
                column.push(value);
            }
            emails.not_before.push(when);
        }
        emails
    }
}

/// Inserts the inbox rows of `entries` and the emails of those a recipient did not have yet, and
/// wakes their recipients' streams (`NOTIFY`), in one statement; the ids of the notifications
/// made, and how many emails were queued.
async fn insert(
    conn: &mut PgConnection,
    entries: &[Entry<'_>],
    emails: Emails,
    now: DateTime<Utc>,
) -> Result<(HashSet<String>, usize), sqlx::Error> {
    if entries.is_empty() {
        return Ok((HashSet::new(), 0));
    }
    let column = |f: fn(&Entry<'_>) -> String| entries.iter().map(f).collect::<Vec<String>>();
    let [ids, users, to, subjects, texts, htmls, message_ids] = emails.text;
    // `w` is read (and so each user told once) only when some row was made.
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "WITH n AS ( \
           INSERT INTO notifications (user_id, seq, id, source, kind, title, body, resource, \
             actor, actor_display_name, link, project_id, in_app, create_time) \
           SELECT t.*, $14 FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], \
             $5::smallint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
             $11::text[], $12::text[], $13::bool[]) AS t \
           ON CONFLICT (user_id, source) DO NOTHING RETURNING user_id, seq, id, in_app), \
         e AS ( \
           INSERT INTO emails (notification_id, user_id, to_address, subject, text_body, \
             html_body, message_id, next_attempt_time) \
           SELECT m.* FROM unnest($15::text[], $16::text[], $17::text[], $18::text[], \
             $19::text[], $20::text[], $21::text[], $22::timestamptz[]) AS m(i, u, a, s, x, h, d, b) \
           WHERE m.i IN (SELECT id FROM n) RETURNING 1), \
         w AS (SELECT pg_notify($23, u) FROM (SELECT DISTINCT user_id AS u FROM n WHERE in_app) o) \
         SELECT id, (SELECT count(*) FROM e), (SELECT count(*) FROM w) FROM n",
    )
    .bind(column(|e| e.user.to_owned()))
    .bind(entries.iter().map(|e| e.seq).collect::<Vec<i64>>())
    .bind(column(|e| e.id.clone()))
    .bind(column(|e| e.source.to_owned()))
    .bind(entries.iter().map(|e| e.draft.kind as i16).collect::<Vec<i16>>())
    .bind(column(|e| e.draft.title.clone()))
    .bind(column(|e| e.draft.body.clone()))
    .bind(column(|e| e.draft.resource.clone()))
    .bind(column(|e| e.draft.actor.name.clone()))
    .bind(column(|e| e.draft.actor.display_name.clone()))
    .bind(column(|e| render::link(&e.draft.resource)))
    .bind(column(|e| project_id(&e.draft.project).to_owned()))
    .bind(entries.iter().map(|e| e.in_app).collect::<Vec<bool>>())
    .bind(now)
    .bind(ids)
    .bind(users)
    .bind(to)
    .bind(subjects)
    .bind(texts)
    .bind(htmls)
    .bind(message_ids)
    .bind(&emails.not_before)
    .bind(CHANNEL)
    .fetch_all(&mut *conn)
    .await?;
    let emailed = rows
        .first()
        .map_or(0, |row| usize::try_from(row.1).unwrap_or(0));
    Ok((rows.into_iter().map(|(id, _, _)| id).collect(), emailed))
}

impl Entry<'_> {
    fn name(&self) -> String {
        format!("users/{}/notifications/{}", self.user, self.id)
    }

    fn rendered<'a>(&'a self, name: &'a str, now: DateTime<Utc>) -> render::Rendered<'a> {
        render::Rendered {
            name,
            kind: self.draft.kind,
            title: &self.draft.title,
            body: &self.draft.body,
            resource: &self.draft.resource,
            actor: &self.draft.actor.name,
            project: &self.draft.project,
            create_time: now,
        }
    }
}

/// Queues each of `entries` that asks for webhooks for each active webhook of its project whose
/// filter it passes.
async fn queue_webhooks(
    conn: &mut PgConnection,
    entries: &[Entry<'_>],
    now: DateTime<Utc>,
) -> Result<usize, sqlx::Error> {
    let mut projects: Vec<&str> = entries
        .iter()
        .filter(|e| e.webhook)
        .map(|e| project_id(&e.draft.project))
        .collect();
    projects.sort_unstable();
    projects.dedup();
    if projects.is_empty() {
        return Ok(0);
    }
    let hooks: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT project_id, webhook_id, filter FROM webhooks \
         WHERE project_id = ANY($1::text[]) AND active",
    )
    .bind(&projects)
    .fetch_all(&mut *conn)
    .await?;
    if hooks.is_empty() {
        return Ok(0);
    }
    let mut rows: [Vec<String>; 6] = Default::default();
    let mut kinds = Vec::new();
    for entry in entries.iter().filter(|e| e.webhook) {
        let project = project_id(&entry.draft.project);
        let mut payload = None;
        for (_, webhook, filter) in hooks.iter().filter(|(p, _, _)| p == project) {
            if !passes(conn, filter, entry).await? {
                continue;
            }
            let payload = payload
                .get_or_insert_with(|| {
                    let name = entry.name();
                    render::webhook_payload(&entry.rendered(&name, now), &entry.draft.recipient)
                })
                .clone();
            for (column, value) in rows.iter_mut().zip([
                project.to_owned(),
                webhook.clone(),
                taskmesh_mesh::aip::new_id(),
                entry.id.clone(),
                render::webhook_message_id(&entry.id),
                payload,
            ]) {
                column.push(value);
            }
            kinds.push(entry.draft.kind as i16);
        }
    }
    if kinds.is_empty() {
        return Ok(0);
    }
    let [
        projects,
        webhooks,
        deliveries,
        notifications,
        message_ids,
        payloads,
    ] = rows;
    let queued = sqlx::query(
        "INSERT INTO deliveries (project_id, webhook_id, delivery_id, notification_id, kind, \
         message_id, payload, next_attempt_time) \
         SELECT p, w, d, n, k, m, b, now() FROM unnest($1::text[], $2::text[], $3::text[], \
           $4::text[], $5::smallint[], $6::text[], $7::text[]) AS t(p, w, d, n, k, m, b) \
         ON CONFLICT DO NOTHING",
    )
    .bind(projects)
    .bind(webhooks)
    .bind(deliveries)
    .bind(notifications)
    .bind(&kinds)
    .bind(message_ids)
    .bind(payloads)
    .execute(&mut *conn)
    .await?;
    Ok(usize::try_from(queued.rows_affected()).unwrap_or(usize::MAX))
}

/// Whether the notification of `entry` (already inserted) passes a webhook's `filter`.
async fn passes(
    conn: &mut PgConnection,
    filter: &str,
    entry: &Entry<'_>,
) -> Result<bool, sqlx::Error> {
    if filter.trim().is_empty() {
        return Ok(true);
    }
    // Checked when the webhook was saved; one that no longer parses matches nothing.
    let Ok(parsed) = aip::Filter::parse(filter, WEBHOOK_FILTER_FIELDS) else {
        return Ok(false);
    };
    let mut query = QueryBuilder::<Postgres>::new(
        "SELECT EXISTS (SELECT 1 FROM notifications WHERE user_id = ",
    );
    query.push_bind(entry.user.to_owned());
    query.push(" AND seq = ");
    query.push_bind(entry.seq);
    parsed.push_and(&mut query);
    query.push(")");
    query.build_query_scalar().fetch_one(&mut *conn).await
}
