//! Value rules of tasks, comments and work logs, and the configurable quota.

use serde::{Deserialize, Serialize};

/// Longest task title.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest task description.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// Longest comment (TaskoMask's bound).
pub const MAX_COMMENT_CHARS: usize = 512;
/// Longest work-log note.
pub const MAX_NOTE_CHARS: usize = 512;
/// Most labels on one task.
pub const MAX_LABELS: usize = 20;
/// Longest single work log, in seconds.
pub const MAX_WORK_SECONDS: i64 = 24 * 3600;

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

/// A title: trimmed, 1 to [`MAX_TITLE_CHARS`] characters, no control characters.
pub fn title(raw: &str) -> Result<String, String> {
    bounded_text(raw.trim(), 1, MAX_TITLE_CHARS)
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

/// A comment text: 1 to [`MAX_COMMENT_CHARS`] characters.
pub fn comment(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err("is required".to_owned());
    }
    if chars > MAX_COMMENT_CHARS {
        return Err(format!(
            "must be at most {MAX_COMMENT_CHARS} characters, got {chars}"
        ));
    }
    Ok(trimmed.to_owned())
}

fn bounded_text(text: &str, min: usize, max: usize) -> Result<String, String> {
    let chars = text.chars().count();
    if chars < min {
        return Err("is required".to_owned());
    }
    if chars > max {
        return Err(format!("must be at most {max} characters, got {chars}"));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(text.to_owned())
}

/// Labels: each 1 to 32 of `[a-z0-9-_]`, at most [`MAX_LABELS`], duplicates removed, sorted.
pub fn labels(raw: &[String]) -> Result<Vec<String>, String> {
    let mut labels: Vec<String> = Vec::with_capacity(raw.len());
    for label in raw {
        let valid = (1..=32).contains(&label.len())
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid {
            return Err(format!(
                "`{label}` is not 1-32 characters of a-z, 0-9, - and _"
            ));
        }
        labels.push(label.clone());
    }
    labels.sort();
    labels.dedup();
    if labels.len() > MAX_LABELS {
        return Err(format!("at most {MAX_LABELS} labels"));
    }
    Ok(labels)
}

/// A work duration: more than zero, at most a day.
pub fn work_duration(raw: Option<&prost_types::Duration>) -> Result<prost_types::Duration, String> {
    let Some(duration) = raw else {
        return Err("is required".to_owned());
    };
    if duration.seconds < 0 || duration.nanos < 0 || (duration.seconds == 0 && duration.nanos == 0)
    {
        return Err("must be positive".to_owned());
    }
    if duration.seconds > MAX_WORK_SECONDS
        || (duration.seconds == MAX_WORK_SECONDS && duration.nanos > 0)
    {
        return Err("must be at most 24 hours".to_owned());
    }
    Ok(*duration)
}

/// An estimate: not negative.
pub fn estimate(
    raw: Option<&prost_types::Duration>,
) -> Result<Option<prost_types::Duration>, String> {
    match raw {
        Some(d) if d.seconds < 0 || d.nanos < 0 => Err("must not be negative".to_owned()),
        other => Ok(other.copied()),
    }
}

/// A day, `YYYY-MM-DD`.
pub fn day(raw: &str) -> Result<String, String> {
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| format!("must be a date like 2026-01-31, got `{raw}`"))
}

/// A note of at most [`MAX_NOTE_CHARS`] characters.
pub fn note(raw: &str) -> Result<String, String> {
    let chars = raw.chars().count();
    if chars > MAX_NOTE_CHARS {
        return Err(format!(
            "must be at most {MAX_NOTE_CHARS} characters, got {chars}"
        ));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(title("  Write docs ").expect("ok"), "Write docs");
        assert!(title("").is_err());
        assert!(title(&"t".repeat(201)).is_err());
        assert!(title("a\nb").is_err());
    }

    #[test]
    fn comments_are_at_most_512_characters() {
        assert!(comment(&"c".repeat(512)).is_ok());
        assert!(comment(&"c".repeat(513)).is_err());
        assert!(comment("   ").is_err());
    }

    #[test]
    fn labels_are_checked_sorted_and_deduplicated() {
        let raw = vec!["ui".to_owned(), "bug".to_owned(), "ui".to_owned()];
        assert_eq!(labels(&raw).expect("ok"), vec!["bug", "ui"]);
        assert!(labels(&["Bug".to_owned()]).is_err());
        let many: Vec<String> = (0..21).map(|i| format!("l{i}")).collect();
        assert!(labels(&many).is_err());
    }

    #[test]
    fn work_durations_are_positive_and_at_most_a_day() {
        let d = |s| prost_types::Duration {
            seconds: s,
            nanos: 0,
        };
        assert!(work_duration(Some(&d(3600))).is_ok());
        assert!(work_duration(Some(&d(0))).is_err());
        assert!(work_duration(Some(&d(-1))).is_err());
        assert!(work_duration(Some(&d(86_401))).is_err());
        assert!(work_duration(None).is_err());
    }

    #[test]
    fn days_are_iso_dates() {
        assert_eq!(day("2026-11-23").expect("ok"), "2026-11-23");
        assert!(day("23/11/2026").is_err());
        assert!(day("2026-02-30").is_err());
    }
}
