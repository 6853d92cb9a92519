//! Time on each user's own clock: when quiet hours end, when the next daily agenda is due, and
//! where "today" begins and ends. Local times that a daylight-saving change skips are read an hour
//! later; those it repeats, at their first occurrence.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// A time of day on a wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalTimeOfDay(NaiveTime);

impl LocalTimeOfDay {
    /// `HH:MM` or `HH:MM:SS`.
    pub fn parse(text: &str) -> Option<Self> {
        NaiveTime::parse_from_str(text, "%H:%M:%S")
            .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
            .ok()
            .map(Self)
    }

    /// Minutes since midnight.
    pub fn minutes(self) -> i16 {
        use chrono::Timelike;
        i16::try_from(self.0.hour() * 60 + self.0.minute()).unwrap_or_default()
    }

    /// From minutes since midnight.
    pub fn from_minutes(minutes: i16) -> Self {
        let minutes = u32::try_from(minutes.clamp(0, 24 * 60 - 1)).unwrap_or_default();
        Self(NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap_or_default())
    }

    /// `HH:MM`.
    pub fn hh_mm(self) -> String {
        self.0.format("%H:%M").to_string()
    }
}

/// An IANA zone by name; empty is UTC.
pub fn zone(name: &str) -> Option<Tz> {
    if name.is_empty() {
        return Some(Tz::UTC);
    }
    name.parse::<Tz>().ok()
}

/// The instant `time` on `date` in `tz`.
pub fn instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let local = date.and_time(time);
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        // Skipped by a daylight-saving change: an hour later exists.
        LocalResult::None => tz
            .from_local_datetime(&(local + TimeDelta::hours(1)))
            .earliest()
            .map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc)),
    }
}

/// The first instant after `after` when the clock of `tz` shows `time`.
pub fn next_local(after: DateTime<Utc>, tz: Tz, time: LocalTimeOfDay) -> DateTime<Utc> {
    let today = after.with_timezone(&tz).date_naive();
    let candidate = instant(tz, today, time.0);
    if candidate > after {
        return candidate;
    }
    let tomorrow = today.checked_add_days(Days::new(1)).unwrap_or(today);
    instant(tz, tomorrow, time.0)
}

/// Where the day that `now` falls on in `tz` begins and ends.
pub fn day_bounds(now: DateTime<Utc>, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let today = now.with_timezone(&tz).date_naive();
    let tomorrow = today.checked_add_days(Days::new(1)).unwrap_or(today);
    (
        instant(tz, today, NaiveTime::MIN),
        instant(tz, tomorrow, NaiveTime::MIN),
    )
}

/// When quiet hours `start..end` (minutes of the day on the clock of `tz`) that hold at `now`
/// end; `None` when `now` is outside them. A start after the end spans midnight.
pub fn quiet_until(now: DateTime<Utc>, tz: Tz, start: i16, end: i16) -> Option<DateTime<Utc>> {
    if start == end {
        return None;
    }
    let local = now.with_timezone(&tz);
    let minute = LocalTimeOfDay(local.time()).minutes();
    let inside = if start < end {
        (start..end).contains(&minute)
    } else {
        minute >= start || minute < end
    };
    inside.then(|| next_local(now, tz, LocalTimeOfDay::from_minutes(end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("an RFC 3339 time")
    }

    #[test]
    fn the_agenda_is_due_at_the_next_eight_on_the_users_clock() {
        let berlin = zone("Europe/Berlin").expect("zone");
        let eight = LocalTimeOfDay::parse("08:00").expect("time");
        // 06:30 UTC is 07:30 in Berlin in winter: today at 08:00 local.
        assert_eq!(
            next_local(utc("2026-12-02T06:30:00Z"), berlin, eight),
            utc("2026-12-02T07:00:00Z")
        );
        // 07:00 UTC is 08:00 exactly: tomorrow's.
        assert_eq!(
            next_local(utc("2026-12-02T07:00:00Z"), berlin, eight),
            utc("2026-12-03T07:00:00Z")
        );
        let tokyo = zone("Asia/Tokyo").expect("zone");
        assert_eq!(
            next_local(utc("2026-12-02T00:00:00Z"), tokyo, eight),
            utc("2026-12-02T23:00:00Z")
        );
    }

    #[test]
    fn a_time_skipped_by_daylight_saving_is_read_an_hour_later() {
        let berlin = zone("Europe/Berlin").expect("zone");
        let half_two = LocalTimeOfDay::parse("02:30").expect("time");
        // 2026-03-29 02:30 does not exist in Berlin; 03:30 CEST is 01:30 UTC.
        assert_eq!(
            next_local(utc("2026-03-29T00:00:00Z"), berlin, half_two),
            utc("2026-03-29T01:30:00Z")
        );
    }

    #[test]
    fn quiet_hours_hold_until_they_end_also_across_midnight() {
        let tz = zone("UTC").expect("zone");
        let (start, end) = (22 * 60, 7 * 60);
        assert_eq!(
            quiet_until(utc("2026-12-02T23:10:00Z"), tz, start, end),
            Some(utc("2026-12-03T07:00:00Z"))
        );
        assert_eq!(
            quiet_until(utc("2026-12-02T03:00:00Z"), tz, start, end),
            Some(utc("2026-12-02T07:00:00Z"))
        );
        assert_eq!(
            quiet_until(utc("2026-12-02T12:00:00Z"), tz, start, end),
            None
        );
        assert_eq!(
            quiet_until(utc("2026-12-02T12:00:00Z"), tz, 12 * 60, 13 * 60),
            Some(utc("2026-12-02T13:00:00Z"))
        );
        assert_eq!(
            quiet_until(utc("2026-12-02T13:00:00Z"), tz, 12 * 60, 13 * 60),
            None
        );
    }

    #[test]
    fn today_is_the_users_day() {
        let tz = zone("America/New_York").expect("zone");
        let (start, end) = day_bounds(utc("2026-12-02T03:00:00Z"), tz);
        assert_eq!(start, utc("2026-12-01T05:00:00Z"));
        assert_eq!(end, utc("2026-12-02T05:00:00Z"));
    }
}
