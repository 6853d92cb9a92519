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
use taskmesh_mesh::status::invalid_argument;
use tonic::Status;
use uuid::Uuid;

/// Collects field violations so that one reply names every broken field.
#[derive(Debug, Default)]
pub(crate) struct Violations(Vec<(String, String)>);

impl Violations {
    /// Keeps the value, or records the violation under `field`.
    pub(crate) fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(description) => {
                self.0.push((field.to_owned(), description));
                None
            }
        }
    }

    /// The resource id from `requested`, or a new one when empty.
    pub(crate) fn resource_id(&mut self, field: &str, requested: &str) -> String {
        if requested.is_empty() {
            return aip::new_id();
        }
        if let Some(problem) = aip::resource_id_problem(requested) {
            self.0.push((field.to_owned(), problem.to_owned()));
        }
        requested.to_owned()
    }

    /// The parsed request id, recording a violation when it is not a UUID.
    pub(crate) fn request_id(&mut self, text: &str) -> Option<Uuid> {
        match aip::parse_request_id(text) {
            Ok(id) => id,
            Err(_) => {
                self.0
                    .push(("request_id".to_owned(), "must be a UUID".to_owned()));
                None
            }
        }
    }

    /// Records a violation.
    pub(crate) fn push(&mut self, field: &str, description: &str) {
        self.0.push((field.to_owned(), description.to_owned()));
    }

    /// INVALID_ARGUMENT listing every violation, if there is any.
    pub(crate) fn finish(self) -> Result<(), Status> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(invalid_argument(self.0))
        }
    }
}

/// INVALID_ARGUMENT for a required message field left unset.
pub(crate) fn required(field: &str) -> Status {
    taskmesh_mesh::status::invalid_field(field, "is required")
}
