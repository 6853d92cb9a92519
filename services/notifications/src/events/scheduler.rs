//! Notifications of due reminders and overdue tasks, from the scheduler's events.

use async_nats::jetstream::Message;
use chrono::{DateTime, Utc};
use taskmesh_contracts::scheduler_v1::{ReminderDue, TaskOverdue};
use taskmesh_events::consumer::{HandleError, Handling};
use taskmesh_events::decode_as;
use taskmesh_mesh::time::from_timestamp;

use super::{Batch, Rule, project_of, undecodable};
use crate::domain::rules::{self, TaskFacts};
use crate::store::facts;

/// Consumes `SCHEDULER`.
#[derive(Debug, Clone)]
pub struct SchedulerEvents;

fn when(time: Option<DateTime<Utc>>) -> String {
    time.map_or_else(
        || "soon".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

impl SchedulerEvents {
    async fn handle_event(&self, batch: &mut Batch, message: &Message) -> Result<(), HandleError> {
        if let Some(event) = decode_as::<ReminderDue>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            let Some(event_id) = batch.claim(message)? else {
                return Ok(());
            };
            let draft = rules::reminder_due(
                &event.recipient,
                &event.task,
                &project_of(&event.task),
                &event.title,
                &when(from_timestamp(event.due_time)),
            );
            batch.notify(&event_id, &[draft]);
            return Ok(());
        }
        if let Some(event) = decode_as::<TaskOverdue>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            let Some(event_id) = batch.claim(message)? else {
                return Ok(());
            };
            let known = facts::task(batch.conn(), &event.task).await?;
            let task = known.map_or_else(
                || TaskFacts {
                    task: event.task.clone(),
                    project: project_of(&event.task),
                    title: event.title.clone(),
                    ..TaskFacts::default()
                },
                |stored| stored.facts,
            );
            let drafts: Vec<_> = rules::task_overdue(
                &task,
                &event.assignee,
                &when(from_timestamp(event.due_time)),
            )
            .into_iter()
            .collect();
            batch.notify(&event_id, &drafts);
            return Ok(());
        }
        Ok(())
    }
}

impl Rule for SchedulerEvents {
    const CONTEXT: &'static str = "scheduler";
    const DURABLE: &'static str = "notifications-scheduler";

    fn apply<'a>(&'a self, batch: &'a mut Batch, message: &'a Message) -> Handling<'a> {
        Box::pin(self.handle_event(batch, message))
    }
}
