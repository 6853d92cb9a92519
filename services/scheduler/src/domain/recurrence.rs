//! RFC 5545 recurrence sets (RRULE, EXDATE, RDATE with DTSTART), as `rrule` parses and expands
//! them. A set has no "next after" of its own: it is expanded from its DTSTART on every
//! evaluation, so every expansion here stays within [`MAX_RECURRENCE_STEPS`], and a rule that
//! would outgrow that is refused when it is set.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rrule::RRuleSet;

use super::trigger::Invalid;

/// Most occurrences of a recurrence looked at in one evaluation. A recurrence is expanded from its
/// DTSTART every time (RRULE sets have no "next after" of their own), so this bounds what one
/// request or one firing can cost (about 0.1-0.2 s of CPU at the most, in a release build).
pub const MAX_RECURRENCE_STEPS: usize = 100_000;

/// A new recurrence may be at most this many occurrences from DTSTART to now, and a sub-daily one
/// may have at most this many in all: half the budget stays for its future.
const MAX_RECURRENCE_START: usize = MAX_RECURRENCE_STEPS / 2;

/// A parsed recurrence set and the zone of its DTSTART.
#[derive(Debug, Clone)]
pub struct Recurrence {
    set: RRuleSet,
    zone: Tz,
}

impl Recurrence {
    /// Parses `rule` (the lines of field `field`), refusing floating DTSTARTs and rules that
    /// would outgrow the expansion budget at `now`.
    pub fn parse(field: &str, rule: &str, now: DateTime<Utc>) -> Result<Self, Invalid> {
        // Lines may come with `\r\n` (iCalendar) or `\n`; blank lines are ignored.
        let text: Vec<&str> = rule
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if !text
            .iter()
            .any(|l| l.to_ascii_uppercase().starts_with("RRULE"))
        {
            return Err(Invalid::new(field, "needs an RRULE line"));
        }
        let set = RRuleSet::from_str(&text.join("\n"))
            .map_err(|err| Invalid::new(field, err.to_string()))?;
        let zone = match set.get_dt_start().timezone() {
            rrule::Tz::Tz(zone) => zone,
            rrule::Tz::Local(_) => {
                return Err(Invalid::new(
                    field,
                    "DTSTART must be in UTC (ending in Z) or name its zone with TZID=",
                ));
            }
        };
        check_budget(field, &set, now)?;
        Ok(Self { set, zone })
    }

    /// The zone of its DTSTART.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The occurrences in order, at most [`MAX_RECURRENCE_STEPS`] of them.
    fn expand(&self) -> impl Iterator<Item = DateTime<Utc>> {
        self.set
            .clone()
            .limit()
            .into_iter()
            .take(MAX_RECURRENCE_STEPS)
            .map(|d| d.with_timezone(&Utc))
    }

    /// The first occurrence strictly after `after`; past the budget the recurrence counts as
    /// ended.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.expand().find(|d| *d > after)
    }

    /// Up to `count` occurrences strictly after `after`, in one expansion.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        self.expand().filter(|d| *d > after).take(count).collect()
    }
}

/// Refuses a recurrence whose expansion would outgrow [`MAX_RECURRENCE_STEPS`]: an endless
/// sub-daily rule, a sub-daily one with more than [`MAX_RECURRENCE_START`] occurrences, or a
/// DTSTART more than that many occurrences before `now`.
fn check_budget(field: &str, set: &RRuleSet, now: DateTime<Utc>) -> Result<(), Invalid> {
    use rrule::Frequency;
    let rules = set.get_rrule();
    let sub_daily = rules.iter().any(|r| {
        matches!(
            r.get_freq(),
            Frequency::Hourly | Frequency::Minutely | Frequency::Secondly
        )
    });
    if sub_daily {
        if rules
            .iter()
            .any(|r| r.get_count().is_none() && r.get_until().is_none())
        {
            return Err(Invalid::new(
                field,
                "an RRULE of FREQ=HOURLY or faster must end (COUNT or UNTIL); for an endless \
                 schedule of that kind use an interval or cron trigger",
            ));
        }
        let total = set
            .clone()
            .limit()
            .into_iter()
            .take(MAX_RECURRENCE_START + 1)
            .count();
        if total > MAX_RECURRENCE_START {
            return Err(Invalid::new(
                field,
                format!(
                    "an RRULE of FREQ=HOURLY or faster may have at most {MAX_RECURRENCE_START} occurrences"
                ),
            ));
        }
    }
    let before_now = set
        .clone()
        .limit()
        .into_iter()
        .take(MAX_RECURRENCE_START + 1)
        .take_while(|d| d.with_timezone(&Utc) <= now)
        .count();
    if before_now > MAX_RECURRENCE_START {
        return Err(Invalid::new(
            field,
            format!(
                "DTSTART is more than {MAX_RECURRENCE_START} occurrences before now; move it closer"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELD: &str = "schedule.trigger.recurrence.rule";

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn a_recurrence_ends_after_its_count() {
        let trigger = Recurrence::parse(
            FIELD,
            "DTSTART;TZID=Europe/Berlin:20270104T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=3",
            Utc::now(),
        )
        .unwrap();
        assert_eq!(
            trigger.upcoming(utc("2027-01-01T00:00:00Z"), 10),
            [
                utc("2027-01-04T08:00:00Z"),
                utc("2027-01-06T08:00:00Z"),
                utc("2027-01-11T08:00:00Z"),
            ]
        );
    }

    #[test]
    fn a_recurrence_ends_at_until_and_leaves_out_its_exdates() {
        let trigger = Recurrence::parse(
            FIELD,
            "DTSTART:20270101T120000Z\r\nRRULE:FREQ=DAILY;UNTIL=20270105T120000Z\r\nEXDATE:20270103T120000Z\r\nRDATE:20270110T080000Z",
            Utc::now(),
        )
        .unwrap();
        assert_eq!(
            trigger.upcoming(utc("2027-01-01T12:00:00Z"), 10),
            [
                utc("2027-01-02T12:00:00Z"),
                utc("2027-01-04T12:00:00Z"),
                utc("2027-01-05T12:00:00Z"),
                utc("2027-01-10T08:00:00Z"),
            ]
        );
    }

    #[test]
    fn recurrences_that_would_outgrow_their_expansion_budget_are_refused() {
        let now = Utc::now();
        let refused = |rule: &str| Recurrence::parse(FIELD, rule, now).unwrap_err();
        // Expanded from 1900 every second, one request would take minutes.
        assert!(
            refused("DTSTART:19000101T000000Z\nRRULE:FREQ=SECONDLY")
                .problem
                .contains("must end")
        );
        assert!(
            refused("DTSTART:20270101T000000Z\nRRULE:FREQ=MINUTELY;COUNT=60000")
                .problem
                .contains("at most")
        );
        assert!(
            refused("DTSTART:18000101T000000Z\nRRULE:FREQ=DAILY")
                .problem
                .contains("DTSTART")
        );
        // A daily rule from 1950 is fine, and answers quickly.
        let daily =
            Recurrence::parse(FIELD, "DTSTART:19500101T090000Z\nRRULE:FREQ=DAILY", now).unwrap();
        assert!(daily.next_after(now).is_some());
    }
}
