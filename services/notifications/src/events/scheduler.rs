//! Notifications of due reminders and overdue tasks, from the scheduler's events.

use std::future::Future;
use std::pin::Pin;

use async_nats::jetstream::Message;
use chrono::{DateTime, Utc};
use taskmesh_contracts::scheduler_v1::{ReminderDue, TaskOverdue};
use taskmesh_events::consumer::{HandleError, Handler};
use taskmesh_events::decode_as;
use taskmesh_mesh::time::from_timestamp;

use super::{Deliverer, project_of, undecodable};
use crate::domain::rules::{self, TaskFacts};
use crate::store::facts;

/// Durable consumer name.
pub const DURABLE: &str = "notifications-scheduler";

/// Consumes `SCHEDULER`.
#[derive(Debug, Clone)]
pub struct SchedulerEvents {
    deliverer: Deliverer,
}

fn when(time: Option<DateTime<Utc>>) -> String {
    time.map_or_else(
        || "soon".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

impl SchedulerEvents {
    /// A consumer making notifications through `deliverer`.
    pub fn new(deliverer: Deliverer) -> Self {
        Self { deliverer }
    }

    async fn apply(&self, message: &Message) -> Result<(), HandleError> {
        if let Some(event) = decode_as::<ReminderDue>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            let Some(claimed) = self.deliverer.claim(DURABLE, message).await? else {
                return Ok(());
            };
            let draft = rules::reminder_due(
                &event.recipient,
                &event.task,
                &project_of(&event.task),
                &event.title,
                &when(from_timestamp(event.due_time)),
            );
            return self.deliverer.finish(claimed, &[draft]).await;
        }
        if let Some(event) = decode_as::<TaskOverdue>(message) {
            let event = event.map_err(|e| undecodable(&e))?;
            let Some(mut claimed) = self.deliverer.claim(DURABLE, message).await? else {
                return Ok(());
            };
            let known = facts::task(claimed.conn(), &event.task).await?;
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
            return self.deliverer.finish(claimed, &drafts).await;
        }
        Ok(())
    }
}

impl Handler for SchedulerEvents {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>> {
        Box::pin(self.apply(message))
    }
}
