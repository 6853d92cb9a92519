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
use taskmesh_events::consumer::{ConsumerSpec, HandleError};
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

/// A claimed event inside its transaction.
pub struct Claimed {
    tx: Transaction<'static, Postgres>,
    event_id: String,
}

impl Claimed {
    /// The transaction, for the read model.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl Deliverer {
    /// Opens the transaction of `message` and claims it for `consumer`; `None` when it was handled
    /// before.
    pub async fn claim(
        &self,
        consumer: &str,
        message: &Message,
    ) -> Result<Option<Claimed>, HandleError> {
        let event_id = taskmesh_events::inbox::event_id(message)
            .ok_or_else(|| HandleError::Retry("an event without an id".to_owned()))?;
        let mut tx = self.store.pool().begin().await?;
        if !taskmesh_events::inbox::claim(&mut tx, consumer, &event_id).await? {
            return Ok(None);
        }
        Ok(Some(Claimed { tx, event_id }))
    }

    /// Makes the notifications of `drafts` in the event's transaction, commits, and wakes the
    /// loops.
    pub async fn finish(&self, mut claimed: Claimed, drafts: &[Draft]) -> Result<(), HandleError> {
        let now = Utc::now();
        let mut made = Made::default();
        for draft in drafts {
            let source = format!(
                "{}/{}",
                claimed.event_id,
                crate::domain::kind_name(draft.kind)
            );
            made += inbox::make(&mut claimed.tx, draft, &source, &self.making, now).await?;
        }
        claimed.tx.commit().await?;
        self.wake.after(made);
        Ok(())
    }
}

/// Declares the consumers of the service.
pub(crate) fn consume(wiring: &mut Wiring<Notifications>, deliverer: &Deliverer) {
    let spec = |wiring: &Wiring<Notifications>, context: &str, durable: &str| {
        ConsumerSpec::new(
            wiring.stream_of(context),
            durable,
            &format!("taskmesh.{context}.v1.>"),
        )
    };
    let tasks = spec(wiring, "tasks", tasks::DURABLE);
    wiring.consume_with(tasks, tasks::TaskEvents::new(deliverer.clone()));
    let projects = spec(wiring, "projects", projects::DURABLE);
    wiring.consume_with(projects, projects::ProjectEvents::new(deliverer.clone()));
    let execution = spec(wiring, "execution", execution::DURABLE);
    wiring.consume_with(
        execution,
        execution::ExecutionEvents::new(deliverer.clone()),
    );
    let scheduler = spec(wiring, "scheduler", scheduler::DURABLE);
    wiring.consume_with(
        scheduler,
        scheduler::SchedulerEvents::new(deliverer.clone()),
    );
    let identity = spec(wiring, "identity", identity::DURABLE);
    wiring.consume_with(identity, identity::IdentityEvents::new(deliverer.clone()));
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
