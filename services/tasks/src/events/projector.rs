//! The projector: a durable consumer of the `TASKS` stream that applies each event to the read
//! model. Redeliveries are skipped by version; an event that arrives before its predecessor (or
//! after the view lost it) repairs the task's view from the event store first. Events that arrive
//! together are applied in one transaction.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_nats::jetstream::Message;
use sqlx::PgPool;
use taskmesh_events::consumer::{self, HandleError, Handler};
use taskmesh_events::{header, headers};

use crate::domain::events::TaskEvent;
use crate::store::read_model::{self, Applied};

/// Durable consumer name of the projector.
pub const DURABLE: &str = "tasks-read-model";

/// Applies TASKS events to the read model.
#[derive(Debug, Clone)]
pub struct Projector {
    pool: PgPool,
}

impl Projector {
    /// A projector writing into `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn project(&self, message: &Message) -> Result<(), HandleError> {
        let event_type = header(message, headers::EVENT_TYPE);
        let event = match TaskEvent::decode(&event_type, &message.payload) {
            Ok(event) => event,
            Err(err) => {
                // Retried like any failure, then dead-lettered: it never blocks later events.
                tracing::error!(error = %err, subject = %message.subject, "undecodable task event");
                return Err(HandleError::Retry(err.to_string()));
            }
        };
        let mut tx = self.pool.begin().await?;
        let applied = read_model::apply_or_repair(&mut tx, &event).await?;
        tx.commit().await?;
        match applied {
            Applied::Applied | Applied::Duplicate => Ok(()),
            Applied::Repaired { from, to } => {
                tracing::info!(task = ?event.context().map(|c| &c.task), from, to, "read model repaired from the event store");
                Ok(())
            }
            Applied::Gap { have } => Err(HandleError::Wait(
                Duration::from_millis(200),
                format!("version {} arrived before {}", event.version(), have + 1),
            )),
        }
    }
}

impl Projector {
    /// Applies the events of `messages` in order in one transaction (one commit for the lot):
    /// anything out of the ordinary (an undecodable event, a gap) rolls it all back, and the
    /// consumer hands the messages to [`project`](Self::project) one by one.
    async fn project_all(&self, messages: &[Message]) -> Result<(), HandleError> {
        let mut tx = self.pool.begin().await?;
        for message in messages {
            let event_type = header(message, headers::EVENT_TYPE);
            let event = TaskEvent::decode(&event_type, &message.payload)
                .map_err(|e| HandleError::Retry(e.to_string()))?;
            match read_model::apply_or_repair(&mut tx, &event).await? {
                Applied::Applied | Applied::Duplicate | Applied::Repaired { .. } => {}
                Applied::Gap { have } => {
                    return Err(HandleError::Retry(format!(
                        "version {} arrived before {}",
                        event.version(),
                        have + 1
                    )));
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Handler for Projector {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>> {
        Box::pin(self.project(message))
    }

    fn handle_batch<'a>(&'a self, messages: &'a [Message]) -> Option<consumer::Handling<'a>> {
        Some(Box::pin(self.project_all(messages)))
    }
}
