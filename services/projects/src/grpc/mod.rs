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

use prost_types::FieldMask;
use taskmesh_mesh::aip;
use tonic::Status;

use crate::domain::rules::{self, MAX_NAME_CHARS};
use crate::store::NameChanges;

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

pub(crate) use taskmesh_mesh::status::required;

/// The changes and mask paths of an update to an organization, project or board: `message` names
/// the request field (`project`) so violations read `project.display_name`.
pub(crate) fn name_changes(
    message: &str,
    display_name: &str,
    description: &str,
    mask: Option<&FieldMask>,
) -> Result<(NameChanges, Vec<&'static str>), Status> {
    let paths = aip::update_paths(mask, &["display_name", "description"])?;
    let mut violations = Violations::default();
    let mut changes = NameChanges::default();
    for path in &paths {
        match *path {
            "display_name" => {
                changes.display_name = violations.check(
                    &format!("{message}.display_name"),
                    rules::display_name(display_name, MAX_NAME_CHARS),
                );
            }
            "description" => {
                changes.description = violations.check(
                    &format!("{message}.description"),
                    rules::description(description),
                );
            }
            _ => {}
        }
    }
    violations.finish()?;
    Ok((changes, paths))
}
