//! The events side of the service: durable consumers of every other service's stream, each of
//! which keeps the read model it needs ([`crate::store::facts`]) and applies the rules
//! ([`crate::domain::rules`]) in one transaction with its inbox claim, so each event makes its
//! notifications once:
//!
//! - [`tasks`]: assignments, comments, completions, moves and deletions of tasks;
//! - [`projects`]: project titles and membership changes;
//! - [`execution`]: jobs that failed or succeeded;
//! - [`scheduler`]: due reminders and overdue tasks;
//! - [`identity`]: users' addresses and names.

pub mod execution;
pub mod identity;
pub mod projects;
pub mod scheduler;
pub mod tasks;

use std::sync::Arc;

use async_nats::jetstream::Message;
use chrono::Utc;
use sqlx::{PgConnection, Postgres, Transaction};
use taskmesh_events::consumer::{ConsumerSpec, HandleError, Handler, Handling};
use taskmesh_service::Wiring;
use tokio::sync::Notify;

use crate::Notifications;
use crate::domain::rules::Draft;
use crate::store::Store;
use crate::store::inbox::{self, Made, Making};

/// Wakes the delivery loops of this process after a commit that queued work for them.
#[derive(Debug, Clone, Default)]
pub struct Wake {
    /// The mail loop.
    pub email: Arc<Notify>,
    /// The webhook loop.
    pub webhooks: Arc<Notify>,
}

impl Wake {
    /// Wakes the loops `made` queued work for.
    pub fn after(&self, made: Made) {
        if made.emails > 0 {
            self.email.notify_one();
        }
        if made.deliveries > 0 {
            self.webhooks.notify_one();
        }
    }
}

/// What every consumer shares: the store, how notifications are made, and the loops to wake.
#[derive(Debug, Clone)]
pub struct Deliverer {
    /// The database.
    pub store: Store,
    /// Links and agenda time.
    pub making: Making,
    /// The delivery loops.
    pub wake: Wake,
}

/// The transaction a consumer applies one event, or several that arrived together, in: their
/// inbox claims, the read model, and the notifications they make with their queued deliveries.
pub struct Batch {
    tx: Transaction<'static, Postgres>,
    made: Made,
}

impl Batch {
    /// The transaction, for the read model.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Claims `message` for `consumer`; its event id, or `None` when it was handled before.
    pub async fn claim(
        &mut self,
        consumer: &str,
        message: &Message,
    ) -> Result<Option<String>, HandleError> {
        let event_id = taskmesh_events::inbox::event_id(message)
            .ok_or_else(|| HandleError::Retry("an event without an id".to_owned()))?;
        let fresh = taskmesh_events::inbox::claim(&mut self.tx, consumer, &event_id).await?;
        Ok(fresh.then_some(event_id))
    }

    /// Makes the notifications of `drafts`, caused by event `event_id`.
    pub async fn notify(
        &mut self,
        event_id: &str,
        drafts: &[Draft],
        making: &Making,
    ) -> Result<(), HandleError> {
        let now = Utc::now();
        for draft in drafts {
            let source = format!("{event_id}/{}", crate::domain::kind_name(draft.kind));
            self.made += inbox::make(&mut self.tx, draft, &source, making, now).await?;
        }
        Ok(())
    }
}

/// What a consumer does with one event inside a [`Batch`].
pub trait Rule: Send + Sync + 'static {
    /// Claims `message` in `batch` and applies it there.
    fn apply<'a>(&'a self, batch: &'a mut Batch, message: &'a Message) -> Handling<'a>;
}

/// A consumer of one stream: its rule, applied one event per transaction, or a whole pulled batch
/// in one (a failure of any undoes the batch, and each event is then handled on its own).
#[derive(Debug, Clone)]
pub struct Consumer<R> {
    rule: R,
    deliverer: Deliverer,
}

impl<R: Rule> Consumer<R> {
    /// `rule`, committing through `deliverer`.
    pub fn new(rule: R, deliverer: Deliverer) -> Self {
        Self { rule, deliverer }
    }

    async fn run(&self, messages: &[Message]) -> Result<(), HandleError> {
        let mut batch = Batch {
            tx: self.deliverer.store.pool().begin().await?,
            made: Made::default(),
        };
        for message in messages {
            self.rule.apply(&mut batch, message).await?;
        }
        let made = batch.made;
        batch.tx.commit().await?;
        self.deliverer.wake.after(made);
        Ok(())
    }
}

impl<R: Rule> Handler for Consumer<R> {
    fn handle<'a>(&'a self, message: &'a Message) -> Handling<'a> {
        Box::pin(self.run(std::slice::from_ref(message)))
    }

    fn handle_batch<'a>(&'a self, messages: &'a [Message]) -> Option<Handling<'a>> {
        Some(Box::pin(self.run(messages)))
    }
}

/// Declares the consumers of the service.
pub(crate) fn consume(wiring: &mut Wiring<Notifications>, deliverer: &Deliverer) {
    let making = &deliverer.making;
    let spec = |wiring: &Wiring<Notifications>, context: &str, durable: &str| {
        ConsumerSpec::new(
            wiring.stream_of(context),
            durable,
            &format!("taskmesh.{context}.v1.>"),
        )
    };
    let tasks = spec(wiring, "tasks", tasks::DURABLE);
    let rule = tasks::TaskEvents::new(making.clone());
    wiring.consume_with(tasks, Consumer::new(rule, deliverer.clone()));
    let projects = spec(wiring, "projects", projects::DURABLE);
    let rule = projects::ProjectEvents::new(making.clone());
    wiring.consume_with(projects, Consumer::new(rule, deliverer.clone()));
    let execution = spec(wiring, "execution", execution::DURABLE);
    let rule = execution::ExecutionEvents::new(making.clone());
    wiring.consume_with(execution, Consumer::new(rule, deliverer.clone()));
    let scheduler = spec(wiring, "scheduler", scheduler::DURABLE);
    let rule = scheduler::SchedulerEvents::new(making.clone());
    wiring.consume_with(scheduler, Consumer::new(rule, deliverer.clone()));
    let identity = spec(wiring, "identity", identity::DURABLE);
    let rule = identity::IdentityEvents::new(making.clone());
    wiring.consume_with(identity, Consumer::new(rule, deliverer.clone()));
}

/// Redeliveries an event may wait for what comes before it; after them something is lost upstream
/// and the event fails like any other (to the dead letters).
const MAX_WAITS: i64 = 600;

/// Asks for `message` again after `delay`, unless it has waited too often already.
fn too_early(message: &Message, delay: std::time::Duration, reason: String) -> HandleError {
    let delivered = message.info().map_or(1, |info| info.delivered);
    if delivered > MAX_WAITS {
        HandleError::Retry(format!("{reason} (after {delivered} deliveries)"))
    } else {
        HandleError::Wait(delay, reason)
    }
}

fn undecodable(e: &prost::DecodeError) -> HandleError {
    HandleError::Retry(format!("undecodable: {e}"))
}

/// The project of a resource name `projects/{project}/...`, as `projects/{project}`.
fn project_of(name: &str) -> String {
    let id = name
        .strip_prefix("projects/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    format!("projects/{id}")
}
