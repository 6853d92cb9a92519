//! The projects domain: resource names and the rules a value must satisfy before it reaches the
//! store. Everything here parses ("parse, don't validate") and reports INVALID_ARGUMENT with the
//! request field that is wrong.

pub mod names;
pub mod rules;

pub use names::{BoardName, ColumnName, MemberName, OrganizationName, ProjectName, UserName};
