//! The events side of the service: durable consumers of every other service's stream, each of
//! which keeps the read model it needs ([`crate::store::facts`]) and applies the rules
//! ([`crate::domain::rules`]) in one transaction with its inbox claim, so each event makes its
//! notifications once:
//!
//! - [`tasks`]: assignments, comments, completions, moves and deletions of tasks;
//! - [`projects`]: project titles and membership changes;
//! - [`execution`]: jobs that failed or succeeded;
//! - [`scheduler`]: due reminders and overdue tasks;
//! - [`identity`]: users' addresses and names;
//! - [`bookings`]: every step of a booking, and a review asked for when it took place.

pub mod bookings;
pub mod execution;
pub mod identity;
pub mod projects;
pub mod scheduler;
pub mod tasks;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_nats::jetstream::Message;
use chrono::Utc;
use sqlx::{PgConnection, Postgres, Transaction};
use taskmesh_events::consumer::{ConsumerSpec, HandleError, Handler, Handling};
use taskmesh_service::Wiring;
use tokio::sync::Notify;

use crate::Notifications;
use crate::domain::rules::{Draft, Person};
use crate::store::Store;
use crate::store::facts;
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
/// inbox claims (one statement for the batch), the read model, and the notifications they make,
/// which are collected and made together with their queued deliveries just before the commit
/// ([`inbox::make_all`]): a handful of statements per batch rather than several per event.
pub struct Batch {
    tx: Transaction<'static, Postgres>,
    fresh: HashSet<String>,
    drafts: Vec<(Draft, String)>,
    people: HashMap<String, Person>,
}

impl Batch {
    /// The transaction, for the read model.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Claims `message`; its event id, or `None` when it was handled before (or already in this
    /// batch).
    pub fn claim(&mut self, message: &Message) -> Result<Option<String>, HandleError> {
        let event_id = taskmesh_events::inbox::event_id(message)
            .ok_or_else(|| HandleError::Retry("an event without an id".to_owned()))?;
        Ok(self.fresh.remove(&event_id).then_some(event_id))
    }

    /// Queues the notifications of `drafts`, caused by event `event_id`.
    pub fn notify(&mut self, event_id: &str, drafts: &[Draft]) {
        for draft in drafts {
            let source = format!("{event_id}/{}", crate::domain::kind_name(draft.kind));
            self.drafts.push((draft.clone(), source));
        }
    }

    /// `user` with their display name, read once per batch. (Names change only by the identity
    /// consumer's events, which make no notifications.)
    pub async fn person(&mut self, user: &str) -> Result<Person, sqlx::Error> {
        if let Some(person) = self.people.get(user) {
            return Ok(person.clone());
        }
        let person = facts::person(&mut self.tx, user).await?;
        self.people.insert(user.to_owned(), person.clone());
        Ok(person)
    }
}

/// What a consumer does with one event inside a [`Batch`].
pub trait Rule: Send + Sync + 'static {
    /// The context whose stream it consumes (`tasks`: `TASKS`, `taskmesh.tasks.v1.>`).
    const CONTEXT: &'static str;
    /// The durable consumer's name, under which its events are claimed too.
    const DURABLE: &'static str;

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
        let mut tx = self.deliverer.store.pool().begin().await?;
        let ids: Vec<String> = messages
            .iter()
            .filter_map(taskmesh_events::inbox::event_id)
            .collect();
        let fresh = taskmesh_events::inbox::claim_all(&mut tx, R::DURABLE, &ids).await?;
        let mut batch = Batch {
            tx,
            fresh,
            drafts: Vec::new(),
            people: HashMap::new(),
        };
        for message in messages {
            self.rule.apply(&mut batch, message).await?;
        }
        let made = inbox::make_all(
            &mut batch.tx,
            &batch.drafts,
            &self.deliverer.making,
            Utc::now(),
        )
        .await?;
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
    add(wiring, tasks::TaskEvents, deliverer);
    add(wiring, projects::ProjectEvents, deliverer);
    add(wiring, execution::ExecutionEvents, deliverer);
    add(wiring, scheduler::SchedulerEvents, deliverer);
    add(wiring, bookings::BookingEvents, deliverer);
    let identity = identity::IdentityEvents::new(deliverer.making.clone());
    add(wiring, identity, deliverer);
}

/// Consumes every event of `R`'s context with `rule`.
fn add<R: Rule>(wiring: &mut Wiring<Notifications>, rule: R, deliverer: &Deliverer) {
    let spec = ConsumerSpec::new(
        wiring.stream_of(R::CONTEXT),
        R::DURABLE,
        &format!("taskmesh.{}.v1.>", R::CONTEXT),
    );
    wiring.consume_with(spec, Consumer::new(rule, deliverer.clone()));
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
