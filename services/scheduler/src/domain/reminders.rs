//! When a reminder fires, given a task's due time: a fixed time before it, or a wall-clock time on
//! the due day in a zone. Pure, like the triggers; the same daylight saving rule holds (a local
//! time that does not exist that day gives no reminder, a repeated one its first instant).

use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Utc};
use taskmesh_contracts::scheduler_v1::{LocalTime, ReminderRule, reminder_rule};

use super::trigger::{Invalid, zone};

/// The moment `rule` fires for a task due at `due`; `None` when it names no moment (a local time
/// that does not exist on the due day).
pub fn remind_time(rule: &ReminderRule, due: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match rule.kind.as_ref()? {
        reminder_rule::Kind::BeforeDue(before) => {
            let before = TimeDelta::seconds(before.seconds)
                + TimeDelta::nanoseconds(i64::from(before.nanos));
            Some(due - before)
        }
        reminder_rule::Kind::OnDueDay(at) => {
            let zone = zone("", &at.time_zone).ok()?;
            let day = due.with_timezone(&zone).date_naive();
            zone.with_ymd_and_hms(
                day.year(),
                day.month(),
                day.day(),
                u32::try_from(at.hour).ok()?,
                u32::try_from(at.minute).ok()?,
                0,
            )
            .earliest()
            .map(|t| t.with_timezone(&Utc))
        }
    }
}

/// Checks what the contract cannot: the zone of a local time. `field` is the rule's path.
pub fn check(rule: &ReminderRule, field: &str) -> Result<(), Invalid> {
    match rule.kind.as_ref() {
        Some(reminder_rule::Kind::OnDueDay(LocalTime { time_zone, .. })) => {
            zone(&format!("{field}.on_due_day.time_zone"), time_zone).map(|_| ())
        }
        Some(reminder_rule::Kind::BeforeDue(_)) => Ok(()),
        None => Err(Invalid {
            field: field.to_owned(),
            problem: "one of before_due or on_due_day is required".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn on_due_day(hour: i32, minute: i32, zone: &str) -> ReminderRule {
        ReminderRule {
            kind: Some(reminder_rule::Kind::OnDueDay(LocalTime {
                hour,
                minute,
                time_zone: zone.into(),
            })),
        }
    }

    #[test]
    fn a_reminder_before_due_is_that_long_before() {
        let rule = ReminderRule {
            kind: Some(reminder_rule::Kind::BeforeDue(prost_types::Duration {
                seconds: 86_400,
                nanos: 0,
            })),
        };
        assert_eq!(
            remind_time(&rule, utc("2027-05-10T17:00:00Z")),
            Some(utc("2027-05-09T17:00:00Z"))
        );
    }

    #[test]
    fn a_reminder_on_the_due_day_is_on_that_day_s_wall_clock_in_its_zone() {
        // Due at 01:00 UTC on May 10th is still May 9th in New York (21:00 EDT).
        let rule = on_due_day(9, 0, "America/New_York");
        assert_eq!(
            remind_time(&rule, utc("2027-05-10T01:00:00Z")),
            Some(utc("2027-05-09T13:00:00Z"))
        );
        assert_eq!(
            remind_time(&on_due_day(9, 30, ""), utc("2027-05-10T17:00:00Z")),
            Some(utc("2027-05-10T09:30:00Z"))
        );
    }

    #[test]
    fn a_local_time_missing_on_the_due_day_gives_no_reminder() {
        // 02:30 does not exist in New York on 2027-03-14.
        let rule = on_due_day(2, 30, "America/New_York");
        assert_eq!(remind_time(&rule, utc("2027-03-14T16:00:00Z")), None);
        // 01:30 exists twice on 2027-11-07: the first one.
        let rule = on_due_day(1, 30, "America/New_York");
        assert_eq!(
            remind_time(&rule, utc("2027-11-07T16:00:00Z")),
            Some(utc("2027-11-07T05:30:00Z"))
        );
    }

    #[test]
    fn an_unknown_zone_is_named() {
        let err = check(&on_due_day(9, 0, "Atlantis/Capital"), "reminder.rule").unwrap_err();
        assert_eq!(err.field, "reminder.rule.on_due_day.time_zone");
    }
}
