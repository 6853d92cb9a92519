//! Values of the projects context (from TaskoMask): how names, kinds and roles read once the
//! contract's rules (lengths, characters, defined enums: `buf.validate` in the `.proto` files) have
//! held, the default columns, and the count limits that a deployment can configure (state the
//! contract cannot know).

use serde::{Deserialize, Serialize};
use taskmesh_contracts::projects_v1::{ColumnKind, Role};

/// Configurable count limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// Live projects per organization (and per creator for personal projects).
    pub max_projects_per_organization: i64,
    /// Live boards per project.
    pub max_boards_per_project: i64,
    /// Columns per board.
    pub max_columns_per_board: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_projects_per_organization: 6,
            max_boards_per_project: 10,
            max_columns_per_board: 10,
        }
    }
}

impl Limits {
    /// Checks that every limit is positive; the error names the key.
    pub fn validate(&self) -> Result<(), taskmesh_mesh::config::ConfigError> {
        for (key, value) in [
            (
                "limits.max_projects_per_organization",
                self.max_projects_per_organization,
            ),
            ("limits.max_boards_per_project", self.max_boards_per_project),
            ("limits.max_columns_per_board", self.max_columns_per_board),
        ] {
            if value < 1 {
                return Err(taskmesh_mesh::config::ConfigError::Invalid {
                    key: key.to_owned(),
                    message: "must be at least 1".to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// A display name as stored: surrounding ASCII spaces trimmed, as the contract's not-blank rule
/// counts them. Its length, characters and presence are
/// the contract's rules (`buf.validate` on `display_name`), checked before a handler runs.
pub fn display_name(raw: &str) -> String {
    raw.trim_matches(|c: char| c.is_ascii_whitespace())
        .to_owned()
}

/// A column kind given on input; the contract has made it a defined, specified kind.
pub fn column_kind(raw: i32) -> ColumnKind {
    ColumnKind::try_from(raw).unwrap_or(ColumnKind::Custom)
}

/// A role given on input; the contract has made it a defined, specified role. Anything else would
/// read as the least one.
pub fn role(raw: i32) -> Role {
    Role::try_from(raw).unwrap_or(Role::Viewer)
}

/// The columns every new board starts with, in order.
pub const DEFAULT_COLUMNS: [(&str, ColumnKind); 4] = [
    ("Backlog", ColumnKind::Backlog),
    ("To do", ColumnKind::Todo),
    ("Doing", ColumnKind::Doing),
    ("Done", ColumnKind::Done),
];

/// The etag of a row at `version`.
pub fn etag(version: i64) -> String {
    format!("v{version}")
}

/// Where a column lands when asked for `requested` on a board of `count` columns.
pub fn clamp_position(requested: i32, count: i32) -> i32 {
    requested.clamp(0, (count - 1).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_trimmed() {
        assert_eq!(display_name("  Roadmap "), "Roadmap");
    }

    #[test]
    fn kinds_and_roles_read_from_their_numbers() {
        assert_eq!(column_kind(4), ColumnKind::Done);
        assert_eq!(role(4), Role::Owner);
        assert_eq!(role(99), Role::Viewer);
    }

    #[test]
    fn default_limits_follow_taskomask() {
        let limits = Limits::default();
        assert_eq!(limits.max_projects_per_organization, 6);
        assert_eq!(limits.max_columns_per_board, 10);
        assert!(limits.validate().is_ok());
        let bad = Limits {
            max_columns_per_board: 0,
            ..Limits::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn positions_clamp_to_the_board() {
        assert_eq!(clamp_position(99, 4), 3);
        assert_eq!(clamp_position(-1, 4), 0);
        assert_eq!(clamp_position(2, 4), 2);
    }
}
