//! Reminders, default reminders, what the scheduler knows of each task (`task_due`, from the TASKS
//! events) and the alarms they come to. After every change that can move a task's alarms, the
//! task is re-armed in the same transaction ([`rearm`]): its unfired alarms are replaced by the
//! ones its current due time, assignee, state and reminders give; fired ones stay, so a reminder
//! fires once per due time and a task turns overdue once per due time.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::PgConnection;
use taskmesh_contracts::scheduler_v1::{Reminder, ReminderRule, ReminderSettings};
use taskmesh_mesh::time::to_timestamp as ts;

use super::Store;
use crate::domain::reminders::remind_time;
use crate::error::Error;

/// The alarm source of a task's overdue check.
pub const OVERDUE: &str = "overdue";

/// Reminders one user may set on one task.
pub const MAX_REMINDERS_PER_TASK: i64 = 20;

/// A task as its events describe it, as far as reminders care.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFacts {
    /// `projects/{p}/tasks/{t}`.
    pub task: String,
    /// Project id.
    pub project: String,
    /// The version of the event these facts are as of.
    pub version: i64,
    /// Title, if the event says.
    pub title: Option<String>,
    /// Assignee, if the event says (`Some("")` for none).
    pub assignee: Option<String>,
    /// Due time, if the event says (`Some(None)` for none).
    pub due_time: Option<Option<DateTime<Utc>>>,
    /// Done, if the event says.
    pub done: Option<bool>,
    /// Deleted, if the event says.
    pub deleted: Option<bool>,
}

#[derive(Debug, sqlx::FromRow)]
struct ReminderRow {
    name: String,
    recipient: String,
    rule: Vec<u8>,
    create_time: DateTime<Utc>,
    remind_time: Option<DateTime<Utc>>,
}

impl ReminderRow {
    fn to_proto(&self) -> Reminder {
        Reminder {
            name: self.name.clone(),
            rule: ReminderRule::decode(self.rule.as_slice()).ok(),
            recipient: self.recipient.clone(),
            remind_time: self.remind_time.map(ts),
            create_time: Some(ts(self.create_time)),
        }
    }
}

const REMINDER_COLUMNS: &str = "r.name, r.recipient, r.rule, r.create_time, \
    (SELECT a.fire_time FROM alarms a JOIN task_due d ON d.task = a.task \
     WHERE a.task = r.task AND a.source = r.name AND a.due_time = d.due_time \
     AND NOT d.done AND NOT d.deleted) AS remind_time";

impl Store {
    /// Applies what a task event says about `facts.task`, unless a later event was applied
    /// already; re-arms the task. Returns whether it applied.
    pub async fn apply_task_facts(&self, facts: &TaskFacts) -> Result<bool, Error> {
        let mut tx = self.pool.begin().await?;
        let applied = sqlx::query(
            "INSERT INTO task_due (task, project, title, assignee, due_time, done, deleted, version) \
             VALUES ($1, $2, COALESCE($3, ''), COALESCE($4, ''), $6, COALESCE($7, false), \
                     COALESCE($8, false), $9) \
             ON CONFLICT (task) DO UPDATE SET \
               title = COALESCE($3, task_due.title), \
               assignee = COALESCE($4, task_due.assignee), \
               due_time = CASE WHEN $5 THEN $6 ELSE task_due.due_time END, \
               done = COALESCE($7, task_due.done), \
               deleted = COALESCE($8, task_due.deleted), \
               version = $9 \
             WHERE task_due.version < $9",
        )
        .bind(&facts.task)
        .bind(&facts.project)
        .bind(&facts.title)
        .bind(&facts.assignee)
        .bind(facts.due_time.is_some())
        .bind(facts.due_time.flatten())
        .bind(facts.done)
        .bind(facts.deleted)
        .bind(facts.version)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if applied {
            rearm(&mut tx, &facts.task).await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Sets a reminder of `task` for `recipient`.
    pub async fn create_reminder(
        &self,
        name: &str,
        task: &str,
        recipient: &str,
        rule: &ReminderRule,
    ) -> Result<Reminder, Error> {
        let mut tx = self.pool.begin().await?;
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM reminders WHERE task = $1 AND recipient = $2")
                .bind(task)
                .bind(recipient)
                .fetch_one(&mut *tx)
                .await?;
        if count >= MAX_REMINDERS_PER_TASK {
            return Err(Error::TooManyReminders {
                max: MAX_REMINDERS_PER_TASK,
            });
        }
        sqlx::query(
            "INSERT INTO reminders (name, task, recipient, rule, create_time) \
             VALUES ($1, $2, $3, $4, now())",
        )
        .bind(name)
        .bind(task)
        .bind(recipient)
        .bind(rule.encode_to_vec())
        .execute(&mut *tx)
        .await?;
        rearm(&mut tx, task).await?;
        let row = reminder(&mut tx, name).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// `recipient`'s reminders of `task`, oldest first.
    pub async fn list_reminders(
        &self,
        task: &str,
        recipient: &str,
    ) -> Result<Vec<Reminder>, Error> {
        let rows: Vec<ReminderRow> = sqlx::query_as(&format!(
            "SELECT {REMINDER_COLUMNS} FROM reminders r WHERE r.task = $1 AND r.recipient = $2 \
             ORDER BY r.create_time, r.name"
        ))
        .bind(task)
        .bind(recipient)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(ReminderRow::to_proto).collect())
    }

    /// Removes `recipient`'s reminder `name` of `task`; NOT_FOUND when there is none of theirs.
    pub async fn delete_reminder(
        &self,
        name: &str,
        task: &str,
        recipient: &str,
    ) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM reminders WHERE name = $1 AND recipient = $2")
            .bind(name)
            .bind(recipient)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(Error::NotFound(name.to_owned()));
        }
        rearm(&mut tx, task).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `owner`'s default reminders (none set: empty).
    pub async fn reminder_settings(&self, owner: &str) -> Result<ReminderSettings, Error> {
        let row: Option<(Vec<u8>, DateTime<Utc>)> =
            sqlx::query_as("SELECT settings, update_time FROM reminder_settings WHERE owner = $1")
                .bind(owner)
                .fetch_optional(&self.pool)
                .await?;
        let mut settings = row
            .as_ref()
            .and_then(|(bytes, _)| ReminderSettings::decode(bytes.as_slice()).ok())
            .unwrap_or_default();
        settings.name = format!("{owner}/reminderSettings");
        settings.update_time = row.map(|(_, time)| ts(time));
        Ok(settings)
    }

    /// Replaces `owner`'s default reminders and re-arms the open tasks assigned to them.
    pub async fn set_reminder_settings(
        &self,
        owner: &str,
        rules: Vec<ReminderRule>,
    ) -> Result<ReminderSettings, Error> {
        let stored = ReminderSettings {
            default_reminders: rules,
            ..ReminderSettings::default()
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO reminder_settings (owner, settings, update_time) VALUES ($1, $2, now()) \
             ON CONFLICT (owner) DO UPDATE SET settings = $2, update_time = now()",
        )
        .bind(owner)
        .bind(stored.encode_to_vec())
        .execute(&mut *tx)
        .await?;
        let tasks: Vec<String> = sqlx::query_scalar(
            "SELECT task FROM task_due WHERE assignee = $1 AND due_time IS NOT NULL \
             AND NOT done AND NOT deleted",
        )
        .bind(owner)
        .fetch_all(&mut *tx)
        .await?;
        for task in &tasks {
            rearm(&mut tx, task).await?;
        }
        tx.commit().await?;
        self.reminder_settings(owner).await
    }
}

async fn reminder(conn: &mut PgConnection, name: &str) -> Result<Reminder, Error> {
    let row: ReminderRow = sqlx::query_as(&format!(
        "SELECT {REMINDER_COLUMNS} FROM reminders r WHERE r.name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| Error::NotFound(name.to_owned()))?;
    Ok(row.to_proto())
}

/// One alarm a task should have.
struct Wanted {
    source: String,
    fire_time: DateTime<Utc>,
    recipient: String,
}

/// Replaces the unfired alarms of `task` with the ones its facts and reminders give now.
/// Reminders whose moment has passed when they are armed are left out; an overdue check whose
/// due time has passed fires at once.
pub(crate) async fn rearm(conn: &mut PgConnection, task: &str) -> Result<(), Error> {
    let facts: Option<(String, Option<DateTime<Utc>>, bool, bool)> = sqlx::query_as(
        "SELECT assignee, due_time, done, deleted FROM task_due WHERE task = $1 FOR UPDATE",
    )
    .bind(task)
    .fetch_optional(&mut *conn)
    .await?;
    let mut wanted = Vec::new();
    let due = match facts {
        Some((assignee, Some(due), false, false)) => {
            let now = Utc::now();
            let reminders: Vec<(String, String, Vec<u8>)> =
                sqlx::query_as("SELECT name, recipient, rule FROM reminders WHERE task = $1")
                    .bind(task)
                    .fetch_all(&mut *conn)
                    .await?;
            for (name, recipient, rule) in reminders {
                if let Some(at) = ReminderRule::decode(rule.as_slice())
                    .ok()
                    .and_then(|rule| remind_time(&rule, due))
                    .filter(|at| *at >= now)
                {
                    wanted.push(Wanted {
                        source: name,
                        fire_time: at,
                        recipient,
                    });
                }
            }
            if !assignee.is_empty() {
                let settings: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT settings FROM reminder_settings WHERE owner = $1")
                        .bind(&assignee)
                        .fetch_optional(&mut *conn)
                        .await?;
                let defaults = settings
                    .and_then(|bytes| ReminderSettings::decode(bytes.as_slice()).ok())
                    .map(|s| s.default_reminders)
                    .unwrap_or_default();
                for (n, rule) in defaults.iter().enumerate() {
                    if let Some(at) = remind_time(rule, due).filter(|at| *at >= now) {
                        wanted.push(Wanted {
                            source: format!("{assignee}/reminderSettings#{n}"),
                            fire_time: at,
                            recipient: assignee.clone(),
                        });
                    }
                }
            }
            wanted.push(Wanted {
                source: OVERDUE.to_owned(),
                fire_time: due,
                recipient: assignee,
            });
            Some(due)
        }
        _ => None,
    };
    let keep: HashSet<&str> = wanted.iter().map(|w| w.source.as_str()).collect();
    let keep: Vec<&str> = keep.into_iter().collect();
    // Unfired alarms for another due time, or of a source that no longer applies, go.
    sqlx::query(
        "DELETE FROM alarms WHERE task = $1 AND NOT fired \
         AND ($2::timestamptz IS NULL OR due_time <> $2 OR NOT (source = ANY($3)))",
    )
    .bind(task)
    .bind(due)
    .bind(&keep)
    .execute(&mut *conn)
    .await?;
    let Some(due) = due else {
        return Ok(());
    };
    for alarm in &wanted {
        // A fired alarm for this source and due time stays as it is: never twice.
        sqlx::query(
            "INSERT INTO alarms (task, source, due_time, fire_time, recipient) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (task, source, due_time) DO UPDATE \
             SET fire_time = EXCLUDED.fire_time, recipient = EXCLUDED.recipient \
             WHERE NOT alarms.fired",
        )
        .bind(task)
        .bind(&alarm.source)
        .bind(due)
        .bind(alarm.fire_time)
        .bind(&alarm.recipient)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
