//! The events side of the execution service. It publishes executions' progress and outcomes to
//! `EXECUTION` (through the outbox, from the store) and consumes `TASKS` for the jobs tasks carry
//! ([`intake`]).

pub mod intake;

use taskmesh_service::Wiring;

use taskmesh_mesh::sealed::Sealer;
use taskmesh_mesh::validate::MessageRules;

use crate::Execution;
use crate::error::Error;
use crate::store::Store;
use intake::{DURABLE, Intake};

/// Declares the consumers of the service.
pub(crate) fn consume(
    wiring: &mut Wiring<Execution>,
    store: &Store,
    sealer: &Sealer,
) -> Result<(), Error> {
    let rules =
        MessageRules::new(taskmesh_contracts::FILE_DESCRIPTOR_SET).map_err(Error::Contracts)?;
    wiring.consume(
        "tasks",
        DURABLE,
        Intake::new(store.clone(), rules, sealer.clone()),
    );
    Ok(())
}
