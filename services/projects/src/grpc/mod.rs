//! gRPC handlers of the projects service. Each handler parses its request into domain values
//! (collecting every field violation), then calls the store, which owns the transaction.

mod boards;
mod members;
mod organizations;
mod projects;

pub use boards::BoardsService;
pub use members::MembersService;
pub use organizations::OrganizationsService;
pub use projects::ProjectsService;

use taskmesh_mesh::aip;
use tonic::Status;

pub(crate) use taskmesh_mesh::status::Violations;

/// The resource id from `requested`, or a new one when empty; a malformed id is recorded.
pub(crate) fn resource_id(violations: &mut Violations, field: &str, requested: &str) -> String {
    if requested.is_empty() {
        return aip::new_id();
    }
    if let Some(problem) = aip::resource_id_problem(requested) {
        violations.push(field, problem);
    }
    requested.to_owned()
}

/// INVALID_ARGUMENT for a required message field left unset.
pub(crate) fn required(field: &str) -> Status {
    taskmesh_mesh::status::invalid_field(field, "is required")
}
