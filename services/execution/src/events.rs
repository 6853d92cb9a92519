//! The events side of the execution service. It publishes executions' progress and outcomes to
//! `EXECUTION` (through the outbox, from the store) and consumes `TASKS` for the jobs tasks carry
//! ([`intake`]).

pub mod intake;

use taskmesh_service::Wiring;

use crate::Execution;
use crate::store::Store;
use intake::{DURABLE, Intake};

/// Declares the consumers of the service.
pub(crate) fn consume(wiring: &mut Wiring<Execution>, store: &Store) {
    wiring.consume("tasks", DURABLE, Intake::new(store.clone()));
}
