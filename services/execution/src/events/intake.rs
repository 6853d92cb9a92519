//! Intake: a durable consumer of `TASKS` that turns every task version carrying a new job
//! (TaskCreated with a job, TaskUpdated whose mask includes `job`) into a pending execution.
//! Creation is idempotent on (task, version), so redeliveries create nothing twice.

use std::future::Future;
use std::pin::Pin;

use async_nats::jetstream::Message;
use taskmesh_contracts::tasks_v1::{EventContext, Job, Task, TaskCreated, TaskUpdated};
use taskmesh_events::consumer::{HandleError, Handler};
use taskmesh_events::{decode_as, header, headers};
use taskmesh_mesh::names::ResourcePattern;
use taskmesh_mesh::sealed::Sealer;
use taskmesh_mesh::validate::MessageRules;
use uuid::Uuid;

use crate::store::{NewExecution, SourceEvent, Store};

pub use crate::store::INTAKE_DURABLE as DURABLE;

/// Creates executions from task events.
#[derive(Debug, Clone)]
pub struct Intake {
    store: Store,
    rules: MessageRules,
    sealer: Sealer,
}

impl Intake {
    /// Intake writing into `store`, checking each job against the contract's `rules` with its
    /// secrets opened by `sealer` (and kept sealed in the store).
    pub fn new(store: Store, rules: MessageRules, sealer: Sealer) -> Self {
        Self {
            store,
            rules,
            sealer,
        }
    }

    async fn take(&self, message: &Message) -> Result<(), HandleError> {
        let event_type = header(message, headers::EVENT_TYPE);
        let undecodable =
            |e: prost::DecodeError| HandleError::Retry(format!("undecodable {event_type}: {e}"));
        let decoded: Option<(EventContext, Job)> =
            if let Some(event) = decode_as::<TaskCreated>(message) {
                let event = event.map_err(undecodable)?;
                event.context.zip(event.job)
            } else if let Some(event) = decode_as::<TaskUpdated>(message) {
                let event = event.map_err(undecodable)?;
                let job_changed = event
                    .update_mask
                    .as_ref()
                    .is_some_and(|m| m.paths.iter().any(|p| p == "job"));
                if job_changed {
                    event.context.zip(event.changes.and_then(|t| t.job))
                } else {
                    None
                }
            } else {
                None
            };
        let Some((context, job)) = decoded else {
            return Ok(());
        };
        // The tasks service checked the job when it was created; whoever else can publish on
        // its subject did not, so the rules are checked again before anything runs, on the
        // values as sent (secrets opened: one that does not open was not sealed for this task).
        let opened = crate::jobs::opened(&self.sealer, &context.task, &job).map_err(|e| {
            HandleError::Retry(format!(
                "the job of {} v{}: {e}",
                context.task, context.version
            ))
        })?;
        let violations = self.rules.violations(&opened).map_err(HandleError::Retry)?;
        if !violations.is_empty() {
            let listed: Vec<String> = violations
                .iter()
                .map(|(field, problem)| format!("job.{field}: {problem}"))
                .collect();
            return Err(HandleError::Retry(format!(
                "the job of {} v{} breaks its contract: {}",
                context.task,
                context.version,
                listed.join("; ")
            )));
        }
        let parsed = ResourcePattern::of::<Task>().parse("task", &context.task);
        let Some((project, task_id)) = parsed.ok().and_then(|[project, task]| {
            Uuid::try_parse(task)
                .ok()
                .map(|task| (project.to_owned(), task))
        }) else {
            return Err(HandleError::Retry(format!(
                "malformed task name `{}`",
                context.task
            )));
        };
        let created = self
            .store
            .create(NewExecution {
                task: context.task.clone(),
                task_id,
                project,
                task_version: context.version,
                // Stored sealed even when it came with a secret in the clear.
                job: crate::jobs::sealed(&self.sealer, &context.task, job),
                correlation_id: header(message, headers::CORRELATION_ID),
                source: SourceEvent {
                    subject: message.subject.to_string(),
                    event_type: event_type.clone(),
                    event_id: taskmesh_events::inbox::event_id(message).unwrap_or_default(),
                    payload: message.payload.to_vec(),
                },
            })
            .await?;
        if created {
            tracing::info!(task = %context.task, version = context.version, "execution queued");
        } else if header(message, headers::MSG_ID).contains(":replay:") {
            // A dead letter replayed: run the failed execution again, once.
            let rerun = self.store.rerun(task_id, context.version).await?;
            tracing::info!(task = %context.task, version = context.version, rerun, "dead letter replayed");
        }
        Ok(())
    }
}

impl Handler for Intake {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>> {
        Box::pin(self.take(message))
    }
}
