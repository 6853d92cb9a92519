//! Value rules of the projects context (from TaskoMask): name and description lengths, column
//! kinds and member roles, and the count limits that a deployment can configure.

use serde::{Deserialize, Serialize};
use taskmesh_contracts::projects_v1::{ColumnKind, Role};

/// Longest display name of organizations, projects and boards.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest column name.
pub const MAX_COLUMN_NAME_CHARS: usize = 32;
/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

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

/// A display name, trimmed, 1 to `max` characters. Returns the violation text on failure.
pub fn display_name(raw: &str, max: usize) -> Result<String, String> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err("is required".to_owned());
    }
    if chars > max {
        return Err(format!("must be at most {max} characters, got {chars}"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(trimmed.to_owned())
}

/// A description of at most [`MAX_DESCRIPTION_CHARS`] characters.
pub fn description(raw: &str) -> Result<String, String> {
    let chars = raw.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "must be at most {MAX_DESCRIPTION_CHARS} characters, got {chars}"
        ));
    }
    Ok(raw.to_owned())
}

/// A column kind given on input: anything but UNSPECIFIED.
pub fn column_kind(raw: i32) -> Result<ColumnKind, String> {
    match ColumnKind::try_from(raw) {
        Ok(ColumnKind::Unspecified) => Err("is required".to_owned()),
        Ok(kind) => Ok(kind),
        Err(_) => Err(format!("{raw} is not a column kind")),
    }
}

/// A role given on input: anything but UNSPECIFIED.
pub fn role(raw: i32) -> Result<Role, String> {
    match Role::try_from(raw) {
        Ok(Role::Unspecified) => Err("is required".to_owned()),
        Ok(role) => Ok(role),
        Err(_) => Err(format!("{raw} is not a role")),
    }
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
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(
            display_name("  Roadmap ", MAX_NAME_CHARS).expect("ok"),
            "Roadmap"
        );
        assert!(display_name("   ", MAX_NAME_CHARS).is_err());
        assert!(display_name(&"x".repeat(65), MAX_NAME_CHARS).is_err());
        assert!(display_name(&"é".repeat(64), MAX_NAME_CHARS).is_ok());
        assert!(display_name("a\u{7}b", MAX_NAME_CHARS).is_err());
    }

    #[test]
    fn descriptions_are_bounded() {
        assert!(description(&"d".repeat(1024)).is_ok());
        assert!(description(&"d".repeat(1025)).is_err());
    }

    #[test]
    fn unspecified_kinds_and_roles_are_refused() {
        assert!(column_kind(0).is_err());
        assert!(column_kind(99).is_err());
        assert_eq!(column_kind(4).expect("ok"), ColumnKind::Done);
        assert!(role(0).is_err());
        assert_eq!(role(4).expect("ok"), Role::Owner);
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
