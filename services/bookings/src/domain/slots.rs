//! Free slots. A provider works weekly hours on its own wall clock, in its time zone, with
//! exceptions (days off, extra hours); a slot is a start at a `step` from the start of a working
//! window whose whole duration fits the window, no sooner than the minimum notice, no later than
//! the horizon, and clear of every held range (a booking's time plus the buffer after it). Wall
//! clock times are turned into instants day by day with `chrono-tz`, so a daylight-saving change
//! gives that day one hour more or less: a time that does not exist (in the spring gap) starts at
//! the first minute after the gap; a time that exists twice (in the autumn) is its earlier one.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// A range of minutes of a day on the provider's clock, `start..end` (`end` up to 1440).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minutes {
    /// From, minutes after midnight.
    pub start: u32,
    /// To, minutes after midnight (1440: midnight at the end of the day).
    pub end: u32,
}

impl Minutes {
    /// Reads `HH:MM`..`HH:MM` (the end may be `24:00`); `None` when malformed or not after the
    /// start.
    pub fn parse(start: &str, end: &str) -> Option<Self> {
        let read = |text: &str| -> Option<u32> {
            let (hours, minutes) = text.split_once(':')?;
            if hours.len() != 2 || minutes.len() != 2 {
                return None;
            }
            let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
            (minutes < 60 && (hours < 24 || (hours == 24 && minutes == 0)))
                .then_some(hours * 60 + minutes)
        };
        let (start, end) = (read(start)?, read(end)?);
        (start < end && start < 1440).then_some(Self { start, end })
    }

    /// `HH:MM` of a minute of the day.
    pub fn clock(minute: u32) -> String {
        format!("{:02}:{:02}", minute / 60, minute % 60)
    }
}

/// A date that differs from the week.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exception {
    /// No work at all that day.
    pub closed: bool,
    /// Hours on top of the week's.
    pub extra: Vec<Minutes>,
}

/// When a provider works and how it may be booked.
#[derive(Debug, Clone)]
pub struct Availability {
    /// The provider's zone.
    pub zone: Tz,
    /// Weekly hours.
    pub weekly: Vec<(Weekday, Minutes)>,
    /// Dates that differ, on the provider's calendar.
    pub exceptions: HashMap<NaiveDate, Exception>,
    /// Kept free after each booking.
    pub buffer: Duration,
    /// How far ahead a booking may start.
    pub horizon: Duration,
    /// How soon before its start a booking must be made.
    pub minimum_notice: Duration,
}

/// What a slot search is about.
#[derive(Debug, Clone, Copy)]
pub struct Search {
    /// The listing's duration.
    pub duration: Duration,
    /// Between starts.
    pub step: Duration,
    /// Earliest start considered.
    pub from: DateTime<Utc>,
    /// Starts before this.
    pub to: DateTime<Utc>,
    /// The moment of asking.
    pub now: DateTime<Utc>,
}

/// The instant of `minute` of `date` on `zone`'s clock: the earlier one when the clock shows it
/// twice, the first minute after a gap when it does not show it at all.
pub fn instant(zone: Tz, date: NaiveDate, minute: u32) -> DateTime<Utc> {
    let midnight = NaiveDateTime::from(date);
    let wall = midnight + Duration::minutes(i64::from(minute));
    for shift in 0..=180 {
        if let Some(found) = zone
            .from_local_datetime(&(wall + Duration::minutes(shift)))
            .earliest()
        {
            return found.with_timezone(&Utc);
        }
    }
    // No zone has a gap of three hours; read the wall clock as UTC rather than fail.
    Utc.from_utc_datetime(&wall)
}

impl Availability {
    /// The working windows of `date` (a day of the provider's calendar) as instants, in order.
    pub fn windows(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let exception = self.exceptions.get(&date);
        if exception.is_some_and(|e| e.closed) {
            return Vec::new();
        }
        let mut ranges: Vec<Minutes> = self
            .weekly
            .iter()
            .filter(|(day, _)| *day == date.weekday())
            .map(|(_, range)| *range)
            .collect();
        ranges.extend(exception.map(|e| e.extra.clone()).unwrap_or_default());
        ranges.sort_by_key(|range| range.start);
        // Ranges that touch or overlap make one window.
        let mut merged: Vec<Minutes> = Vec::new();
        for range in ranges {
            match merged.last_mut() {
                Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
                _ => merged.push(range),
            }
        }
        merged
            .into_iter()
            .map(|range| {
                (
                    instant(self.zone, date, range.start),
                    instant(self.zone, date, range.end),
                )
            })
            .filter(|(start, end)| start < end)
            .collect()
    }

    /// Whether a booking `start..start + duration` keeps to the rules: it lies in one working
    /// window, respects the notice and the horizon. Other bookings are not looked at: the
    /// database refuses overlaps.
    pub fn allows(
        &self,
        start: DateTime<Utc>,
        duration: Duration,
        step: Duration,
        now: DateTime<Utc>,
    ) -> bool {
        let search = Search {
            duration,
            step,
            from: start,
            to: start + Duration::seconds(1),
            now,
        };
        self.free_slots(&search, &[]).first() == Some(&start)
    }

    /// The free starts of `search`, earliest first, clear of every range in `held` (each a
    /// booking's start to its end plus its buffer).
    pub fn free_slots(
        &self,
        search: &Search,
        held: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> Vec<DateTime<Utc>> {
        let earliest = (search.now + self.minimum_notice).max(search.from);
        let latest = (search.now + self.horizon).min(search.to);
        if earliest >= latest || search.step <= Duration::zero() {
            return Vec::new();
        }
        let first_day = earliest.with_timezone(&self.zone).date_naive() - Duration::days(1);
        let last_day = latest.with_timezone(&self.zone).date_naive();
        let mut slots = Vec::new();
        let mut day = first_day;
        while day <= last_day {
            for (window_start, window_end) in self.windows(day) {
                let mut start = window_start;
                while start + search.duration <= window_end {
                    let end = start + search.duration + self.buffer;
                    let clear = held
                        .iter()
                        .all(|(held_start, held_end)| !(start < *held_end && *held_start < end));
                    if start >= earliest && start < latest && clear {
                        slots.push(start);
                    }
                    start += search.step;
                }
            }
            day += Duration::days(1);
        }
        slots.sort();
        slots.dedup();
        slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("an instant")
            .with_timezone(&Utc)
    }

    fn rules(zone: Tz, weekly: &[(Weekday, &str, &str)]) -> Availability {
        Availability {
            zone,
            weekly: weekly
                .iter()
                .map(|(day, start, end)| (*day, Minutes::parse(start, end).expect("hours")))
                .collect(),
            exceptions: HashMap::new(),
            buffer: Duration::zero(),
            horizon: Duration::days(365),
            minimum_notice: Duration::zero(),
        }
    }

    fn search(minutes: i64, step: i64, from: &str, to: &str, now: &str) -> Search {
        Search {
            duration: Duration::minutes(minutes),
            step: Duration::minutes(step),
            from: at(from),
            to: at(to),
            now: at(now),
        }
    }

    fn starts(slots: &[DateTime<Utc>]) -> Vec<String> {
        slots
            .iter()
            .map(|s| s.format("%Y-%m-%dT%H:%MZ").to_string())
            .collect()
    }

    const LONG_AGO: &str = "2026-01-01T00:00:00Z";

    #[test]
    fn hours_read_as_clock_times() {
        assert_eq!(
            Minutes::parse("09:00", "17:30"),
            Some(Minutes {
                start: 540,
                end: 1050
            })
        );
        assert_eq!(
            Minutes::parse("22:00", "24:00"),
            Some(Minutes {
                start: 1320,
                end: 1440
            })
        );
        for (start, end) in [
            ("17:00", "09:00"),
            ("09:00", "09:00"),
            ("9:00", "10:00"),
            ("24:00", "24:00"),
            ("10:60", "11:00"),
            ("10:00", "24:01"),
        ] {
            assert_eq!(Minutes::parse(start, end), None, "{start}-{end}");
        }
    }

    /// Each case: the provider's rules, the search, what is held, and the starts expected (UTC).
    #[test]
    fn slots_follow_the_providers_clock_its_exceptions_and_its_bookings() {
        let berlin: Tz = "Europe/Berlin".parse().expect("zone");
        let tokyo: Tz = "Asia/Tokyo".parse().expect("zone");
        let new_york: Tz = "America/New_York".parse().expect("zone");
        let monday = rules(berlin, &[(Weekday::Mon, "09:00", "12:00")]);
        let mut buffered = monday.clone();
        buffered.buffer = Duration::minutes(30);
        let mut noticed = monday.clone();
        noticed.minimum_notice = Duration::hours(2);
        let mut closed = monday.clone();
        closed.exceptions.insert(
            NaiveDate::from_ymd_opt(2026, 12, 7).expect("date"),
            Exception {
                closed: true,
                extra: vec![Minutes {
                    start: 600,
                    end: 660,
                }],
            },
        );
        let mut extra = monday.clone();
        extra.exceptions.insert(
            NaiveDate::from_ymd_opt(2026, 12, 12).expect("date"),
            Exception {
                closed: false,
                extra: vec![Minutes::parse("10:00", "11:00").expect("hours")],
            },
        );
        let mut near = monday.clone();
        near.horizon = Duration::days(7);
        // Customer in New York: the provider in Tokyo works Tuesday 09:00-10:00 (00:00Z), which is
        // Monday 19:00 for the customer.
        let tokyo_tuesday = rules(tokyo, &[(Weekday::Tue, "09:00", "10:00")]);
        let ny_monday = (
            instant(
                new_york,
                NaiveDate::from_ymd_opt(2026, 12, 7).expect("date"),
                0,
            ),
            instant(
                new_york,
                NaiveDate::from_ymd_opt(2026, 12, 8).expect("date"),
                0,
            ),
        );
        let ny_tuesday = (
            ny_monday.1,
            instant(
                new_york,
                NaiveDate::from_ymd_opt(2026, 12, 9).expect("date"),
                0,
            ),
        );
        let spring = rules(berlin, &[(Weekday::Sun, "01:00", "05:00")]);
        let autumn = rules(berlin, &[(Weekday::Sun, "01:00", "04:00")]);
        let night = rules(berlin, &[(Weekday::Sun, "02:00", "04:00")]);

        let week = ("2026-12-07T00:00:00Z", "2026-12-14T00:00:00Z");
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&str, &Availability, Search, Vec<(&str, &str)>, Vec<&str>)> = vec![
            (
                "a winter Monday in Berlin (UTC+1), hourly slots every 30 minutes",
                &monday,
                search(60, 30, week.0, week.1, LONG_AGO),
                vec![],
                vec![
                    "2026-12-07T08:00Z",
                    "2026-12-07T08:30Z",
                    "2026-12-07T09:00Z",
                    "2026-12-07T09:30Z",
                    "2026-12-07T10:00Z",
                ],
            ),
            (
                "a booking 09:00-10:00 UTC holds its time, no buffer",
                &monday,
                search(60, 30, week.0, week.1, LONG_AGO),
                vec![("2026-12-07T09:00:00Z", "2026-12-07T10:00:00Z")],
                vec!["2026-12-07T08:00Z", "2026-12-07T10:00Z"],
            ),
            (
                "a buffer of 30 minutes after each booking, the new one's too",
                &buffered,
                search(60, 30, week.0, week.1, LONG_AGO),
                vec![
                    ("2026-12-07T08:00:00Z", "2026-12-07T09:30:00Z"),
                    ("2026-12-07T11:00:00Z", "2026-12-07T12:30:00Z"),
                ],
                // 10:00 would end at 11:00, but its buffer would reach into the 11:00 booking.
                vec!["2026-12-07T09:30Z"],
            ),
            (
                "minimum notice of two hours from 08:15 UTC",
                &noticed,
                search(30, 30, week.0, week.1, "2026-12-07T08:15:00Z"),
                vec![],
                vec!["2026-12-07T10:30Z"],
            ),
            (
                "a day off",
                &closed,
                search(60, 30, week.0, week.1, LONG_AGO),
                vec![],
                vec![],
            ),
            (
                "extra hours on a Saturday",
                &extra,
                search(30, 30, week.0, week.1, LONG_AGO),
                vec![],
                vec![
                    "2026-12-07T08:00Z",
                    "2026-12-07T08:30Z",
                    "2026-12-07T09:00Z",
                    "2026-12-07T09:30Z",
                    "2026-12-07T10:00Z",
                    "2026-12-07T10:30Z",
                    "2026-12-12T09:00Z",
                    "2026-12-12T09:30Z",
                ],
            ),
            (
                "the horizon: a week ahead of Sunday 6 December, the next Monday but one is out",
                &near,
                search(
                    60,
                    60,
                    "2026-12-07T00:00:00Z",
                    "2026-12-21T00:00:00Z",
                    "2026-12-06T12:00:00Z",
                ),
                vec![],
                vec![
                    "2026-12-07T08:00Z",
                    "2026-12-07T09:00Z",
                    "2026-12-07T10:00Z",
                ],
            ),
            (
                "spring forward in Berlin (29 March 2026): 01:00-05:00 is three real hours",
                &spring,
                search(
                    60,
                    60,
                    "2026-03-28T00:00:00Z",
                    "2026-03-30T00:00:00Z",
                    LONG_AGO,
                ),
                vec![],
                vec![
                    "2026-03-29T00:00Z",
                    "2026-03-29T01:00Z",
                    "2026-03-29T02:00Z",
                ],
            ),
            (
                "a window starting in the spring gap starts at 03:00 CEST",
                &night,
                search(
                    60,
                    60,
                    "2026-03-28T00:00:00Z",
                    "2026-03-30T00:00:00Z",
                    LONG_AGO,
                ),
                vec![],
                vec!["2026-03-29T01:00Z"],
            ),
            (
                "fall back in Berlin (25 October 2026): 01:00-04:00 is four real hours",
                &autumn,
                search(
                    60,
                    60,
                    "2026-10-24T00:00:00Z",
                    "2026-10-26T00:00:00Z",
                    LONG_AGO,
                ),
                vec![],
                vec![
                    "2026-10-24T23:00Z",
                    "2026-10-25T00:00Z",
                    "2026-10-25T01:00Z",
                    "2026-10-25T02:00Z",
                ],
            ),
        ];
        for (label, rules, search, held, expected) in cases {
            let held: Vec<(DateTime<Utc>, DateTime<Utc>)> =
                held.iter().map(|(a, b)| (at(a), at(b))).collect();
            assert_eq!(
                starts(&rules.free_slots(&search, &held)),
                expected,
                "{label}"
            );
        }
        let for_new_york = |(from, to): (DateTime<Utc>, DateTime<Utc>)| {
            starts(&tokyo_tuesday.free_slots(
                &Search {
                    duration: Duration::minutes(60),
                    step: Duration::minutes(60),
                    from,
                    to,
                    now: at(LONG_AGO),
                },
                &[],
            ))
        };
        assert_eq!(
            for_new_york(ny_monday),
            vec!["2026-12-08T00:00Z"],
            "Tokyo's Tuesday morning is New York's Monday evening"
        );
        assert!(for_new_york(ny_tuesday).is_empty());
    }

    #[test]
    fn a_booking_is_allowed_only_on_a_slot() {
        let monday = rules(
            "Europe/Berlin".parse().expect("zone"),
            &[(Weekday::Mon, "09:00", "12:00")],
        );
        let now = at(LONG_AGO);
        let step = Duration::minutes(15);
        assert!(monday.allows(at("2026-12-07T08:15:00Z"), Duration::minutes(60), step, now));
        assert!(
            !monday.allows(at("2026-12-07T08:10:00Z"), Duration::minutes(60), step, now),
            "off the grid"
        );
        assert!(
            !monday.allows(at("2026-12-07T10:15:00Z"), Duration::minutes(60), step, now),
            "runs past 12:00"
        );
        assert!(
            !monday.allows(at("2026-12-08T08:15:00Z"), Duration::minutes(60), step, now),
            "Tuesday"
        );
    }
}
