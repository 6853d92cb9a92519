//! Values of tasks, comments and work logs as stored once the contract's rules have held, the
//! calendar check of a work log's day, and the configurable quota.

use serde::{Deserialize, Serialize};

/// Configurable limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// Live tasks per board.
    pub max_tasks_per_board: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tasks_per_board: 1000,
        }
    }
}

/// A title as stored: surrounding spaces trimmed. Its length, characters and presence are the
/// contract's rules (`buf.validate` on `Task.title`), checked before a handler runs; so are those of
/// descriptions, comments, notes, labels, durations, estimates and jobs.
pub fn title(raw: &str) -> String {
    raw.trim().to_owned()
}

/// A comment's text as stored: surrounding spaces trimmed.
pub fn comment(raw: &str) -> String {
    raw.trim().to_owned()
}

/// Labels as stored: sorted, duplicates removed (each label's form and their count are the
/// contract's rules).
pub fn labels(mut labels: Vec<String>) -> Vec<String> {
    labels.sort();
    labels.dedup();
    labels
}

/// A day, `YYYY-MM-DD`, that exists in the calendar: the contract checks the form, this the date
/// (2026-02-30 has the form and is no day).
pub fn day(raw: &str) -> Result<String, String> {
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| format!("`{raw}` is not a day of the calendar"))
}

/// A task's status in a column of `kind`.
pub fn status_of(kind: i32) -> taskmesh_contracts::tasks_v1::Status {
    use taskmesh_contracts::projects_v1::ColumnKind;
    use taskmesh_contracts::tasks_v1::Status as TaskStatus;

    match ColumnKind::try_from(kind) {
        Ok(ColumnKind::Backlog) => TaskStatus::Backlog,
        Ok(ColumnKind::Todo) => TaskStatus::Todo,
        Ok(ColumnKind::Doing) => TaskStatus::Doing,
        Ok(ColumnKind::Done) => TaskStatus::Done,
        Ok(ColumnKind::Custom) => TaskStatus::Custom,
        _ => TaskStatus::Unspecified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_comments_are_trimmed() {
        assert_eq!(title("  Write docs "), "Write docs");
        assert_eq!(comment(" ok\n"), "ok");
    }

    #[test]
    fn labels_are_sorted_and_deduplicated() {
        let raw = vec!["ui".to_owned(), "bug".to_owned(), "ui".to_owned()];
        assert_eq!(labels(raw), vec!["bug", "ui"]);
    }

    #[test]
    fn days_are_iso_dates() {
        assert_eq!(day("2026-11-23").expect("ok"), "2026-11-23");
        assert!(day("23/11/2026").is_err());
        assert!(day("2026-02-30").is_err());
    }
}
