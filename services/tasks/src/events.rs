//! The events side of the tasks service. It publishes to `TASKS` (through the outbox, from the
//! event store, so each event commits with the task's new version) and consumes its own stream
//! into the read model ([`crate::projector`]) and `EXECUTION` into the tasks' job status
//! ([`crate::job_status`]).

use taskmesh_service::Wiring;

use crate::Tasks;
use crate::job_status::{self, JobStatusProjector};
use crate::projector::{self, Projector};

/// Declares the consumers of the service.
pub(crate) fn consume(wiring: &mut Wiring<Tasks>) {
    let pool = wiring.pool().clone();
    wiring
        .consume("tasks", projector::DURABLE, Projector::new(pool.clone()))
        .consume(
            "execution",
            job_status::DURABLE,
            JobStatusProjector::new(pool),
        );
}
