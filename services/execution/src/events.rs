//! The events side of the execution service. It publishes executions' progress and outcomes to
//! `EXECUTION` (through the outbox, from the store) and consumes `TASKS` for the jobs tasks carry
//! ([`crate::intake`]).

use taskmesh_service::Wiring;

use crate::Execution;
use crate::intake::{DURABLE, Intake};
use crate::store::Store;

/// Declares the consumers of the service.
pub(crate) fn consume(wiring: &mut Wiring<Execution>, store: &Store) {
    wiring.consume("tasks", DURABLE, Intake::new(store.clone()));
}
