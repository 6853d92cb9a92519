//! The events side of the scheduler. It publishes `ScheduleTriggered`, `ReminderDue` and
//! `TaskOverdue` on `SCHEDULER` (through the outbox, from the firer), learns the tasks' due times
//! from the tasks service's events ([`due_times`]), and consumes the projects service's events so
//! that a schedule never acts beyond what its owner may do ([`projects`]):
//!
//! - its owner removed from the project, or made a viewer: paused;
//! - the project deleted, or the board or column of its task template deleted: paused;
//! - the kind of its template's column changed: the tasks it creates take the new status.
//!
//! A paused schedule keeps its reason in `pause_reason`; resuming it checks the resumer's access
//! again and makes the resumer its owner. Each change is idempotent, so a redelivery is harmless.

pub mod due_times;
pub mod projects;

use taskmesh_events::consumer::{ConsumerSpec, HandleError};
use taskmesh_service::Wiring;

use crate::Scheduler;
use crate::store::Store;
use due_times::DueTimes;
use projects::ProjectChanges;

/// Declares the consumers of the service.
pub(crate) fn consume(wiring: &mut Wiring<Scheduler>, store: &Store) {
    let projects = ConsumerSpec::new(
        wiring.stream_of("projects"),
        projects::DURABLE,
        "taskmesh.projects.v1.>",
    );
    wiring.consume_with(projects, ProjectChanges::new(store.clone()));
    let tasks = ConsumerSpec::new(
        wiring.stream_of("tasks"),
        due_times::DURABLE,
        "taskmesh.tasks.v1.>",
    );
    wiring.consume_with(tasks, DueTimes::new(store.clone()));
}

fn undecodable(e: &prost::DecodeError) -> HandleError {
    HandleError::Retry(format!("undecodable: {e}"))
}

/// The project id of a resource name `projects/{project}/...`.
fn project_of(name: &str) -> &str {
    name.strip_prefix("projects/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
}
