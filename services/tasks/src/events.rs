//! The events side of the tasks service. It publishes to `TASKS` (through the outbox, from the
//! event store, so each event commits with the task's new version) and consumes its own stream
//! into the read model ([`projector`]), `EXECUTION` into the tasks' job status
//! ([`job_status`]) and the scheduler's firings into recurring tasks ([`schedules`]).

pub mod job_status;
pub mod projector;
pub mod schedules;

use taskmesh_service::Wiring;

use crate::Tasks;
use crate::grpc::service::Tasks as TaskCommands;
use job_status::JobStatusProjector;
use projector::Projector;
use schedules::ScheduledTasks;

/// Declares the consumers of the service.
pub(crate) fn consume(wiring: &mut Wiring<Tasks>, commands: &TaskCommands) {
    let pool = wiring.pool().clone();
    wiring
        .consume("tasks", projector::DURABLE, Projector::new(pool.clone()))
        .consume(
            "execution",
            job_status::DURABLE,
            JobStatusProjector::new(pool),
        )
        .consume(
            "scheduler",
            schedules::DURABLE,
            ScheduledTasks::new(commands.clone()),
        );
}
