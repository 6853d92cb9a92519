//! The events side of the tasks service. It publishes to `TASKS` (through the outbox, from the
//! event store, so each event commits with the task's new version) and consumes its own stream
//! into the read model ([`projector`]) and `EXECUTION` into the tasks' job status
//! ([`job_status`]).

pub mod job_status;
pub mod projector;

use taskmesh_service::Wiring;

use crate::Tasks;
use job_status::JobStatusProjector;
use projector::Projector;

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
