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

use crate::domain::rules;
use crate::store::NameChanges;

/// The resource id from `requested` (its form checked by the contract), or a new one when empty.
pub(crate) fn resource_id(requested: &str) -> String {
    if requested.is_empty() {
        aip::new_id()
    } else {
        requested.to_owned()
    }
}

pub(crate) use taskmesh_mesh::status::required;

/// The changes and mask paths of an update to an organization, project or board.
pub(crate) fn name_changes(
    display_name: &str,
    description: &str,
    mask: Option<&FieldMask>,
) -> Result<(NameChanges, Vec<&'static str>), Status> {
    let paths = aip::update_paths(mask, &["display_name", "description"])?;
    let mut changes = NameChanges::default();
    for path in &paths {
        match *path {
            "display_name" => changes.display_name = Some(rules::display_name(display_name)),
            "description" => changes.description = Some(description.to_owned()),
            _ => {}
        }
    }
    Ok((changes, paths))
}
