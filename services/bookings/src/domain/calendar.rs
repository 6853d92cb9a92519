//! The iCalendar feed (RFC 5545), made with the `icalendar` crate: one VEVENT per booking, its UID
//! stable (the booking's id), SEQUENCE raised on every change of time or state, times in UTC,
//! STATUS TENTATIVE while requested, CONFIRMED once accepted (and after), CANCELLED when called
//! off, so calendar programs update or strike the event they already hold.

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

/// The UID of a booking's event: the same in every feed and every version of it.
pub fn uid(booking: &str) -> String {
    format!("{}@taskmesh.dev", booking.replace('/', "-"))
}

/// The feed `title` holding `entries`.
pub fn feed(title: &str, entries: &[Entry]) -> String {
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
    calendar.done().to_string()
}
