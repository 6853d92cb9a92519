//! Firing alarms: like schedules, due rows are claimed with `FOR UPDATE SKIP LOCKED` through a
//! partial index (`alarms_due`), turned into `ReminderDue` or `TaskOverdue` in the outbox and
//! marked fired in the same transaction, so each fires exactly once across replicas.

use chrono::{DateTime, Utc};
use taskmesh_contracts::scheduler_v1::{ReminderDue, TaskOverdue};
use taskmesh_events::OutgoingEvent;
use taskmesh_events::outbox::OutboxRows;
use taskmesh_mesh::time::to_timestamp as ts;
use uuid::Uuid;

use super::Store;
use super::reminders::OVERDUE;
use crate::error::Error;

/// The namespace of alarm event ids (a UUIDv5 of task, source and due time).
const ALARM_NAMESPACE: Uuid = Uuid::from_u128(0x0b7c_54d2_3f19_4e8a_a1c6_616c_6172_6d73);

#[derive(Debug, sqlx::FromRow)]
struct Due {
    task: String,
    source: String,
    due_time: DateTime<Utc>,
    fire_time: DateTime<Utc>,
    recipient: String,
    title: String,
    assignee: String,
}

impl Store {
    /// Fires up to `batch` alarms due at `now`; returns how many fired.
    pub async fn fire_alarms(&self, batch: u32, now: DateTime<Utc>) -> Result<usize, Error> {
        let mut tx = self.pool.begin().await?;
        let due: Vec<Due> = sqlx::query_as(
            "SELECT a.task, a.source, a.due_time, a.fire_time, a.recipient, d.title, d.assignee \
             FROM alarms a JOIN task_due d ON d.task = a.task \
             WHERE NOT a.fired AND a.fire_time <= $1 ORDER BY a.fire_time LIMIT $2 \
             FOR UPDATE OF a SKIP LOCKED",
        )
        .bind(now)
        .bind(i64::from(batch))
        .fetch_all(&mut *tx)
        .await?;
        if due.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let events: Vec<OutgoingEvent> = due.iter().map(event).collect();
        sqlx::query(
            "UPDATE alarms a SET fired = true FROM unnest($1::text[], $2::text[], \
             $3::timestamptz[]) AS f(task, source, due_time) \
             WHERE a.task = f.task AND a.source = f.source AND a.due_time = f.due_time",
        )
        .bind(due.iter().map(|d| d.task.clone()).collect::<Vec<_>>())
        .bind(due.iter().map(|d| d.source.clone()).collect::<Vec<_>>())
        .bind(due.iter().map(|d| d.due_time).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        self.outbox
            .rows(&events)?
            .bind(sqlx::query(&OutboxRows::insert_sql(1)))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.outbox.wake();
        Ok(due.len())
    }
}

fn event(alarm: &Due) -> OutgoingEvent {
    let key = format!(
        "{}|{}|{}",
        alarm.task,
        alarm.source,
        alarm
            .due_time
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    );
    let id = Uuid::new_v5(&ALARM_NAMESPACE, key.as_bytes());
    let mut outgoing = if alarm.source == OVERDUE {
        OutgoingEvent::new(
            &alarm.task,
            &TaskOverdue {
                task: alarm.task.clone(),
                title: alarm.title.clone(),
                assignee: alarm.assignee.clone(),
                due_time: Some(ts(alarm.due_time)),
            },
        )
    } else {
        // A default reminder's source is `users/{user}/reminderSettings#{n}`: the event names
        // the settings.
        let reminder = alarm
            .source
            .split_once('#')
            .map_or(alarm.source.as_str(), |(settings, _)| settings);
        OutgoingEvent::new(
            &alarm.task,
            &ReminderDue {
                task: alarm.task.clone(),
                reminder: reminder.to_owned(),
                recipient: alarm.recipient.clone(),
                title: alarm.title.clone(),
                due_time: Some(ts(alarm.due_time)),
                remind_time: Some(ts(alarm.fire_time)),
            },
        )
    }
    .caused_by(&id.to_string(), "");
    outgoing.id = id;
    outgoing
}
