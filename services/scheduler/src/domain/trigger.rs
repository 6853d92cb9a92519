//! Triggers: when a schedule fires. A contract `Trigger` is parsed once into a [`Trigger`], which
//! answers one question, [`Trigger::next_after`]: the first occurrence strictly after an instant.
//! Every instant is UTC; local rules (cron, RRULE with `TZID`) are read on the wall clock of their
//! IANA zone (chrono-tz).
//!
//! Daylight saving time, for wall-clock rules:
//! - a local time that does not exist (spring forward: 02:30 on the night clocks go from 02:00 to
//!   03:00) is **skipped once**: that day has no occurrence for it;
//! - a local time that exists twice (fall back: 01:30 on the night clocks go from 02:00 back to
//!   01:00) **fires once**, at its first instant.
//!
//! Rules with wildcard or stepped hours (`*/15 * * * *`) keep moving in real time: they fire at
//! every matching wall-clock time that exists, through both passes of a repeated hour.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use super::recurrence::Recurrence;

/// A trigger field that is wrong, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Invalid {
    /// Path of the field in the request, `schedule.trigger.cron.expression`.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl Invalid {
    pub(crate) fn new(field: &str, problem: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}

/// When a schedule fires.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// Once, at this instant.
    Once(DateTime<Utc>),
    /// At `start`, `start + every`, ..., not after `end`.
    Interval {
        /// The period.
        every: TimeDelta,
        /// The first occurrence.
        start: DateTime<Utc>,
        /// No occurrence after this.
        end: Option<DateTime<Utc>>,
    },
    /// Where a cron expression matches the wall clock of `zone`.
    Cron {
        /// The parsed expression.
        cron: Box<Cron>,
        /// Its zone.
        zone: Tz,
        /// No occurrence before this.
        start: Option<DateTime<Utc>>,
        /// No occurrence after this.
        end: Option<DateTime<Utc>>,
    },
    /// The instants of an RFC 5545 recurrence set.
    Recurrence(Box<Recurrence>),
}

/// The contract's trigger kinds, without protobuf types: the domain stays free of the contracts'
/// wire types so that it can be tested on its own.
#[derive(Debug, Clone)]
pub enum Spec<'a> {
    /// `once.fire_time`.
    Once(Option<DateTime<Utc>>),
    /// `interval`: every, start, end.
    Interval {
        /// The period, if given.
        every: Option<TimeDelta>,
        /// The first occurrence, if given.
        start: Option<DateTime<Utc>>,
        /// The end, if given.
        end: Option<DateTime<Utc>>,
    },
    /// `cron`: expression, zone, start, end.
    Cron {
        /// The expression.
        expression: &'a str,
        /// The IANA zone, empty for UTC.
        time_zone: &'a str,
        /// No occurrence before this.
        start: Option<DateTime<Utc>>,
        /// No occurrence after this.
        end: Option<DateTime<Utc>>,
    },
    /// `recurrence.rule`.
    Recurrence(&'a str),
}

/// The field paths of each kind, under `schedule.trigger`.
const FIELD: &str = "schedule.trigger";

/// `time` to whole microseconds, the precision PostgreSQL keeps: an occurrence computed here and
/// the same occurrence read back from the database must be the same instant.
fn stored(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

impl Trigger {
    /// Parses `spec`. An interval without a start starts one period after `now` (on a whole
    /// second). Instants are kept to the microsecond.
    pub fn parse(spec: &Spec<'_>, now: DateTime<Utc>) -> Result<Self, Invalid> {
        let start_of = |t: Option<DateTime<Utc>>| t.map(stored);
        match *spec {
            Spec::Once(at) => start_of(at)
                .map(Self::Once)
                .ok_or_else(|| Invalid::new(&format!("{FIELD}.once.fire_time"), "is required")),
            Spec::Interval { every, start, end } => {
                let every = every.ok_or_else(|| {
                    Invalid::new(&format!("{FIELD}.interval.every"), "is required")
                })?;
                if every < TimeDelta::seconds(1) {
                    return Err(Invalid::new(
                        &format!("{FIELD}.interval.every"),
                        "must be at least 1 second",
                    ));
                }
                let every = TimeDelta::microseconds(every.num_microseconds().unwrap_or(i64::MAX));
                let start = start_of(start).unwrap_or_else(|| (now + every).trunc_subsecs(0));
                let end = start_of(end);
                check_window(&format!("{FIELD}.interval"), Some(start), end)?;
                Ok(Self::Interval { every, start, end })
            }
            Spec::Cron {
                expression,
                time_zone,
                start,
                end,
            } => {
                let zone = zone(&format!("{FIELD}.cron.time_zone"), time_zone)?;
                let cron = CronParser::builder()
                    .seconds(Seconds::Optional)
                    .build()
                    .parse(expression.trim())
                    .map_err(|err| {
                        Invalid::new(&format!("{FIELD}.cron.expression"), cron_problem(&err))
                    })?;
                let (start, end) = (start_of(start), start_of(end));
                check_window(&format!("{FIELD}.cron"), start, end)?;
                Ok(Self::Cron {
                    cron: Box::new(cron),
                    zone,
                    start,
                    end,
                })
            }
            Spec::Recurrence(rule) => Ok(Self::Recurrence(Box::new(Recurrence::parse(
                &format!("{FIELD}.recurrence.rule"),
                rule,
                now,
            )?))),
        }
    }

    /// The zone wall-clock times are shown in (UTC for one-shot and interval triggers).
    pub fn zone(&self) -> Tz {
        match self {
            Self::Once(_) | Self::Interval { .. } => Tz::UTC,
            Self::Cron { zone, .. } => *zone,
            Self::Recurrence(recurrence) => recurrence.zone(),
        }
    }

    /// The first occurrence strictly after `after`, or `None` when the trigger has no more.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Once(at) => (*at > after).then_some(*at),
            Self::Interval { every, start, end } => {
                let next = if after < *start {
                    *start
                } else {
                    let every_ns = i128::from(every.num_nanoseconds()?);
                    let since = i128::from((after - *start).num_nanoseconds()?);
                    let periods = since / every_ns + 1;
                    let offset = i64::try_from(periods * every_ns).ok()?;
                    *start + TimeDelta::nanoseconds(offset)
                };
                end.is_none_or(|end| next <= end).then_some(next)
            }
            Self::Cron {
                cron,
                zone,
                start,
                end,
            } => {
                // Not before `start`: search from just before it.
                let from = match start {
                    Some(start) if *start > after => *start - TimeDelta::nanoseconds(1),
                    _ => after,
                };
                let mut cursor = from.with_timezone(zone);
                // A shifted match (croner moves a wall time that does not exist to the end of
                // the gap) is not an occurrence: it is skipped, and the search goes on. A few
                // rounds are plenty; a pattern that never matches ends the search.
                for _ in 0..8 {
                    let found = cron.find_next_occurrence(&cursor, false).ok()?;
                    if cron.is_time_matching(&found).unwrap_or(false) {
                        let found = found.with_timezone(&Utc);
                        return end.is_none_or(|end| found <= end).then_some(found);
                    }
                    cursor = found;
                }
                None
            }
            Self::Recurrence(recurrence) => recurrence.next_after(after),
        }
    }

    /// Up to `count` occurrences strictly after `after`, soonest first.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        if let Self::Recurrence(recurrence) = self {
            return recurrence.upcoming(after, count);
        }
        let mut times = Vec::with_capacity(count);
        let mut cursor = after;
        while times.len() < count {
            match self.next_after(cursor) {
                Some(next) => {
                    times.push(next);
                    cursor = next;
                }
                None => break,
            }
        }
        times
    }

    /// `time` on the wall clock of the trigger's zone, RFC 3339 with its offset.
    pub fn local_time(&self, time: DateTime<Utc>) -> String {
        time.with_timezone(&self.zone())
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    }
}

/// The IANA zone `name` (empty: UTC), or what is wrong with it, for `field`.
pub(crate) fn zone(field: &str, name: &str) -> Result<Tz, Invalid> {
    if name.is_empty() {
        return Ok(Tz::UTC);
    }
    name.parse::<Tz>().map_err(|_| {
        Invalid::new(
            field,
            format!("`{name}` is not an IANA time zone (for example `Europe/Berlin` or `UTC`)"),
        )
    })
}

fn check_window(
    field: &str,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Result<(), Invalid> {
    match (start, end) {
        (Some(start), Some(end)) if end < start => Err(Invalid::new(
            &format!("{field}.end_time"),
            "must not be before start_time",
        )),
        _ => Ok(()),
    }
}

fn cron_problem(err: &croner::errors::CronError) -> String {
    format!(
        "{err}; expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn cron(expression: &str, zone: &str) -> Trigger {
        Trigger::parse(
            &Spec::Cron {
                expression,
                time_zone: zone,
                start: None,
                end: None,
            },
            Utc::now(),
        )
        .unwrap()
    }

    #[test]
    fn an_interval_counts_whole_periods_from_its_start() {
        let start = utc("2027-01-01T00:00:00Z");
        let trigger = Trigger::parse(
            &Spec::Interval {
                every: Some(TimeDelta::minutes(90)),
                start: Some(start),
                end: Some(utc("2027-01-01T04:30:00Z")),
            },
            start,
        )
        .unwrap();
        assert_eq!(
            trigger.upcoming(utc("2026-12-31T00:00:00Z"), 10),
            [
                utc("2027-01-01T00:00:00Z"),
                utc("2027-01-01T01:30:00Z"),
                utc("2027-01-01T03:00:00Z"),
                utc("2027-01-01T04:30:00Z"),
            ]
        );
        assert_eq!(
            trigger.next_after(utc("2027-01-01T01:30:00Z")),
            Some(utc("2027-01-01T03:00:00Z"))
        );
    }

    #[test]
    fn an_interval_without_a_start_begins_one_period_after_now() {
        let now = utc("2027-05-01T10:00:00Z");
        let trigger = Trigger::parse(
            &Spec::Interval {
                every: Some(TimeDelta::seconds(30)),
                start: None,
                end: None,
            },
            now,
        )
        .unwrap();
        assert_eq!(trigger.next_after(now), Some(utc("2027-05-01T10:00:30Z")));
    }

    #[test]
    fn a_cron_reads_the_wall_clock_of_its_zone() {
        // 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
        let trigger = cron("0 9 * * MON-FRI", "Europe/Berlin");
        assert_eq!(
            trigger.upcoming(utc("2027-03-25T12:00:00Z"), 3),
            [
                utc("2027-03-26T08:00:00Z"), // Friday, CET
                utc("2027-03-29T07:00:00Z"), // Monday, CEST
                utc("2027-03-30T07:00:00Z"),
            ]
        );
        assert_eq!(
            trigger.local_time(utc("2027-03-29T07:00:00Z")),
            "2027-03-29T09:00:00+02:00"
        );
    }

    #[test]
    fn a_cron_with_seconds_fires_on_them() {
        let trigger = cron("*/20 * * * * *", "UTC");
        assert_eq!(
            trigger.upcoming(utc("2027-01-01T00:00:05Z"), 3),
            [
                utc("2027-01-01T00:00:20Z"),
                utc("2027-01-01T00:00:40Z"),
                utc("2027-01-01T00:01:00Z"),
            ]
        );
    }

    #[test]
    fn a_local_time_that_does_not_exist_is_skipped_once() {
        // New York springs forward on 2027-03-14: 02:00 EST becomes 03:00 EDT.
        let trigger = cron("30 2 * * *", "America/New_York");
        assert_eq!(
            trigger.upcoming(utc("2027-03-13T00:00:00Z"), 3),
            [
                utc("2027-03-13T07:30:00Z"), // 02:30 EST
                // 2027-03-14 has no 02:30
                utc("2027-03-15T06:30:00Z"), // 02:30 EDT
                utc("2027-03-16T06:30:00Z"),
            ]
        );
    }

    #[test]
    fn a_local_time_that_exists_twice_fires_once() {
        // New York falls back on 2027-11-07: 02:00 EDT becomes 01:00 EST, so 01:30 comes twice.
        let trigger = cron("30 1 * * *", "America/New_York");
        assert_eq!(
            trigger.upcoming(utc("2027-11-06T00:00:00Z"), 3),
            [
                utc("2027-11-06T05:30:00Z"), // 01:30 EDT
                utc("2027-11-07T05:30:00Z"), // the first 01:30 (EDT) only
                utc("2027-11-08T06:30:00Z"), // 01:30 EST
            ]
        );
    }

    #[test]
    fn a_stepped_cron_keeps_real_time_through_a_repeated_hour() {
        let trigger = cron("0 * * * *", "America/New_York");
        // 00:00 EDT, 01:00 EDT, 01:00 EST, 02:00 EST: four hours of real time.
        assert_eq!(
            trigger.upcoming(utc("2027-11-07T03:59:00Z"), 4),
            [
                utc("2027-11-07T04:00:00Z"),
                utc("2027-11-07T05:00:00Z"),
                utc("2027-11-07T06:00:00Z"),
                utc("2027-11-07T07:00:00Z"),
            ]
        );
    }

    #[test]
    fn bad_expressions_name_their_field_and_problem() {
        let now = Utc::now();
        let err = Trigger::parse(
            &Spec::Cron {
                expression: "61 * * * *",
                time_zone: "",
                start: None,
                end: None,
            },
            now,
        )
        .unwrap_err();
        assert_eq!(err.field, "schedule.trigger.cron.expression");
        let err = Trigger::parse(
            &Spec::Cron {
                expression: "0 9 * * *",
                time_zone: "Mars/Olympus",
                start: None,
                end: None,
            },
            now,
        )
        .unwrap_err();
        assert_eq!(err.field, "schedule.trigger.cron.time_zone");
        assert!(err.problem.contains("Mars/Olympus"), "{}", err.problem);
        let err = Trigger::parse(&Spec::Recurrence("RRULE:FREQ=DAILY"), now).unwrap_err();
        assert_eq!(err.field, "schedule.trigger.recurrence.rule");
        let err = Trigger::parse(
            &Spec::Recurrence("DTSTART:20270101T120000\nRRULE:FREQ=DAILY"),
            now,
        )
        .unwrap_err();
        assert!(err.problem.contains("TZID"), "{}", err.problem);
        let err = Trigger::parse(
            &Spec::Recurrence("DTSTART:20270101T120000Z\nRRULE:FREQ=SOMETIMES"),
            now,
        )
        .unwrap_err();
        assert_eq!(err.field, "schedule.trigger.recurrence.rule");
    }
}
