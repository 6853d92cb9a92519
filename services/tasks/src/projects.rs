//! The projects service as the tasks service sees it: the shared client, and the status a task
//! takes from the kind of its column.

use taskmesh_contracts::projects_v1::ColumnKind;
use taskmesh_contracts::tasks_v1::Status as TaskStatus;

pub use taskmesh_clients::projects::{Access, EndpointError, ProjectsClient, ProjectsEndpoint};

/// A task's status in a column of `kind`.
pub fn status_of(kind: i32) -> TaskStatus {
    match ColumnKind::try_from(kind) {
        Ok(ColumnKind::Backlog) => TaskStatus::Backlog,
        Ok(ColumnKind::Todo) => TaskStatus::Todo,
        Ok(ColumnKind::Doing) => TaskStatus::Doing,
        Ok(ColumnKind::Done) => TaskStatus::Done,
        Ok(ColumnKind::Custom) => TaskStatus::Custom,
        _ => TaskStatus::Unspecified,
    }
}
