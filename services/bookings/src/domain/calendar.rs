//! The iCalendar feed (RFC 5545), made with the `icalendar` crate: one VEVENT per booking, its UID
//! stable (the booking's id), SEQUENCE raised on every change of time or state, times in UTC,
//! STATUS TENTATIVE while requested, CONFIRMED once accepted (and after), CANCELLED when called
//! off, so calendar programs update or strike the event they already hold. A user's tasks with due
//! times come as short events at the due time (`Due: …`, `Done: …` once done), their UID the
//! task's, their SEQUENCE its version.

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, Event, EventLike, EventStatus};

use super::state::State;

/// One booking as the feed shows it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The booking's resource name (the UID is made from it).
    pub booking: String,
    /// One line: the listing and the other side.
    pub summary: String,
    /// More about it.
    pub description: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
    /// State.
    pub state: State,
    /// Changes so far.
    pub sequence: u32,
    /// Last change.
    pub changed: DateTime<Utc>,
}

/// One task with a due time as the feed shows it.
#[derive(Debug, Clone)]
pub struct TaskEntry {
    /// `projects/{project}/tasks/{task}`.
    pub task: String,
    /// Its title.
    pub title: String,
    /// When it is due.
    pub due: DateTime<Utc>,
    /// Done already.
    pub done: bool,
    /// The task's version.
    pub sequence: u32,
}

/// How long a task's event lasts in a calendar.
const TASK_MINUTES: i64 = 15;

/// The UID of a booking's event: the same in every feed and every version of it.
pub fn uid(booking: &str) -> String {
    format!("{}@taskmesh.dev", booking.replace('/', "-"))
}

/// The feed `title` holding the bookings `entries` and the `tasks`.
pub fn feed(title: &str, entries: &[Entry], tasks: &[TaskEntry]) -> String {
    let mut calendar = Calendar::new();
    calendar.name(title);
    for entry in entries {
        let status = match entry.state {
            State::Requested => EventStatus::Tentative,
            State::Confirmed | State::Completed => EventStatus::Confirmed,
            State::Cancelled => EventStatus::Cancelled,
        };
        calendar.push(
            Event::new()
                .uid(&uid(&entry.booking))
                .summary(&entry.summary)
                .description(&entry.description)
                .starts(entry.start)
                .ends(entry.end)
                .status(status)
                .sequence(entry.sequence)
                .timestamp(entry.changed)
                .last_modified(entry.changed)
                .done(),
        );
    }
    for task in tasks {
        let label = if task.done { "Done" } else { "Due" };
        calendar.push(
            Event::new()
                .uid(&uid(&task.task))
                .summary(&format!("{label}: {}", task.title))
                .description(&task.task)
                .starts(task.due)
                .ends(task.due + chrono::Duration::minutes(TASK_MINUTES))
                .status(EventStatus::Confirmed)
                .sequence(task.sequence)
                .done(),
        );
    }
    calendar.done().to_string()
}
