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

/// Longest per-attempt timeout of a job, in seconds.
pub const MAX_JOB_TIMEOUT_SECS: i64 = 600;
/// Most attempts of a job.
pub const MAX_JOB_ATTEMPTS: i32 = 10;

/// A job: an http(s) URL, a known method, a query for crawls, bounded timeout and attempts.
/// Returns the violations as (field suffix, description).
pub fn job(job: &taskmesh_contracts::tasks_v1::Job) -> Result<(), (String, String)> {
    use taskmesh_contracts::tasks_v1::job::Kind;
    let http_url = |url: &str| url.starts_with("http://") || url.starts_with("https://");
    match &job.kind {
        None => return Err(("kind".into(), "set web_crawl or http_request".into())),
        Some(Kind::WebCrawl(crawl)) => {
            if !http_url(&crawl.url) {
                return Err(("web_crawl.url".into(), "must be an http(s) URL".into()));
            }
            let chars = crawl.query.chars().count();
            if !(1..=256).contains(&chars) {
                return Err((
                    "web_crawl.query".into(),
                    "must be 1 to 256 characters".into(),
                ));
            }
        }
        Some(Kind::HttpRequest(request)) => {
            if !http_url(&request.url) {
                return Err(("http_request.url".into(), "must be an http(s) URL".into()));
            }
            let method = request.method.to_ascii_uppercase();
            if !method.is_empty()
                && !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&method.as_str())
            {
                return Err((
                    "http_request.method".into(),
                    format!("`{}` is not supported", request.method),
                ));
            }
            if request.expected_status != 0 && !(100..=599).contains(&request.expected_status) {
                return Err((
                    "http_request.expected_status".into(),
                    "must be 100-599 or 0".into(),
                ));
            }
        }
    }
    if let Some(timeout) = &job.timeout
        && (timeout.seconds < 0
            || timeout.seconds > MAX_JOB_TIMEOUT_SECS
            || (timeout.seconds == 0 && timeout.nanos <= 0))
    {
        return Err((
            "timeout".into(),
            format!("must be positive and at most {MAX_JOB_TIMEOUT_SECS} s"),
        ));
    }
    if !(0..=MAX_JOB_ATTEMPTS).contains(&job.max_attempts) {
        return Err((
            "max_attempts".into(),
            format!("must be 0 (default) to {MAX_JOB_ATTEMPTS}"),
        ));
    }
    Ok(())
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
    fn jobs_need_a_kind_an_http_url_and_bounds() {
        use taskmesh_contracts::tasks_v1::{HttpRequest, Job, WebCrawl, job::Kind};
        let crawl = |url: &str, query: &str| Job {
            kind: Some(Kind::WebCrawl(WebCrawl {
                url: url.into(),
                query: query.into(),
            })),
            ..Default::default()
        };
        assert!(job(&crawl("http://example.test/", "rust")).is_ok());
        assert_eq!(
            job(&crawl("ftp://x", "q")).expect_err("scheme").0,
            "web_crawl.url"
        );
        assert_eq!(
            job(&crawl("http://x", "")).expect_err("query").0,
            "web_crawl.query"
        );
        assert_eq!(job(&Job::default()).expect_err("kind").0, "kind");
        let request = Job {
            kind: Some(Kind::HttpRequest(HttpRequest {
                method: "BREW".into(),
                url: "http://x".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(job(&request).expect_err("method").0, "http_request.method");
        let too_many = Job {
            max_attempts: 11,
            ..crawl("http://x", "q")
        };
        assert_eq!(job(&too_many).expect_err("attempts").0, "max_attempts");
    }

    #[test]
    fn days_are_iso_dates() {
        assert_eq!(day("2026-11-23").expect("ok"), "2026-11-23");
        assert!(day("23/11/2026").is_err());
        assert!(day("2026-02-30").is_err());
    }
}
