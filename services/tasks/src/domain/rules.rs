//! Values of tasks, comments and work logs as stored once the contract's rules have held (a work
//! log's day is a day of the calendar by the contract's pattern), and the configurable quota.

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

/// A title as stored: surrounding ASCII spaces trimmed, as the contract's not-blank rule counts
/// them. Its length, characters and presence are the
/// contract's rules (`buf.validate` on `Task.title`), checked before a handler runs; so are those of
/// descriptions, comments, notes, labels, durations, estimates and jobs.
pub fn title(raw: &str) -> String {
    raw.trim_matches(|c: char| c.is_ascii_whitespace())
        .to_owned()
}

/// A comment's text as stored: surrounding ASCII spaces trimmed.
pub fn comment(raw: &str) -> String {
    raw.trim_matches(|c: char| c.is_ascii_whitespace())
        .to_owned()
}

/// Labels as stored: sorted, duplicates removed (each label's form and their count are the
/// contract's rules).
pub fn labels(mut labels: Vec<String>) -> Vec<String> {
    labels.sort();
    labels.dedup();
    labels
}

/// A task's status in a column of `kind` (shared with the scheduler, which resolves its templates'
/// columns).
pub use taskmesh_clients::projects::task_status as status_of;

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

    /// The contract's pattern for a work log's day accepts exactly the days of the calendar
    /// (leap years included), as chrono knows them.
    #[test]
    fn the_contract_knows_the_calendar() {
        use prost::Message;
        use taskmesh_contracts::tasks_v1::{LogWorkRequest, WorkLog};
        use taskmesh_mesh::validate::RequestRules;

        let rules = RequestRules::new(taskmesh_contracts::FILE_DESCRIPTOR_SET).expect("rules");
        let method = rules
            .method("/taskmesh.tasks.v1.TaskService/LogWork")
            .expect("LogWork")
            .clone();
        let accepted = |day: &str| {
            let request = LogWorkRequest {
                parent: "projects/p/tasks/0194f0c43c567f43a6a13f1ad1f0a1b2".into(),
                work_log: Some(WorkLog {
                    duration: Some(prost_types::Duration {
                        seconds: 60,
                        nanos: 0,
                    }),
                    day: day.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            };
            rules.check(&method, &request.encode_to_vec()).is_ok()
        };
        for year in [
            1, 4, 100, 400, 1900, 1996, 2000, 2023, 2024, 2100, 2400, 9999,
        ] {
            for month in 1..=12 {
                for day in 1..=32 {
                    let text = format!("{year:04}-{month:02}-{day:02}");
                    let real = chrono::NaiveDate::from_ymd_opt(year, month, day).is_some();
                    assert_eq!(accepted(&text), real, "{text}");
                }
            }
        }
        for bad in [
            "2026-1-05",
            "2026-13-01",
            "26-01-05",
            "2026-01-05T00:00:00Z",
            " 2026-01-05",
        ] {
            assert!(!accepted(bad), "{bad}");
        }
    }

    /// An assignee is a user's name by the contract's pattern (`users/ada`), or empty.
    #[test]
    fn assignees_are_user_names_by_the_contract() {
        use prost::Message;
        use taskmesh_contracts::tasks_v1::{CreateTaskRequest, Task};
        use taskmesh_mesh::validate::RequestRules;

        let rules = RequestRules::new(taskmesh_contracts::FILE_DESCRIPTOR_SET).expect("rules");
        let method = rules
            .method("/taskmesh.tasks.v1.TaskService/CreateTask")
            .expect("CreateTask")
            .clone();
        let accepted = |assignee: &str| {
            let request = CreateTaskRequest {
                parent: "projects/p".into(),
                task: Some(Task {
                    title: "T".into(),
                    column: "projects/p/boards/b/columns/c".into(),
                    assignee: assignee.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            };
            rules.check(&method, &request.encode_to_vec()).is_ok()
        };
        assert!(accepted("users/ada"));
        assert!(accepted(""));
        assert!(!accepted("ada"));
        assert!(!accepted("users/"));
    }
}
