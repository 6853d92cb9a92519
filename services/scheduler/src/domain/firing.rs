//! What a schedule fires when its time has come: the occurrences due since its next fire time,
//! sorted into on time, missed and expired, and the misfire policy applied to them. Pure: the
//! store claims the schedule, asks [`plan`], and writes the firings and the new next fire time in
//! one transaction.

use chrono::{DateTime, TimeDelta, Utc};

use super::trigger::Trigger;

/// What to do with occurrences that passed while nothing could fire them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misfire {
    /// Fire every missed occurrence within the catch-up window, oldest first.
    FireAll,
    /// Fire once, for the latest due occurrence, when any were missed.
    FireOnce,
    /// Fire none of the missed ones.
    Skip,
}

/// How late is too late.
#[derive(Debug, Clone, Copy)]
pub struct Lateness {
    /// An occurrence fired later than this after its time was missed (the scheduler was down,
    /// the schedule paused); earlier, it is merely on time.
    pub threshold: TimeDelta,
    /// Missed occurrences older than this are skipped whatever the policy.
    pub window: TimeDelta,
    /// Most firings of one schedule in one round; the rest follow in the next round.
    pub max_fires: usize,
}

/// Most occurrences looked at for one schedule in one round (a one-second interval missed for a
/// week is 604 800 of them): past this, the round stops and the next goes on from there.
const MAX_SCAN: usize = 100_000;

/// One firing to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    /// The occurrence it is for.
    pub occurrence: DateTime<Utc>,
    /// Occurrences skipped just before it.
    pub missed: i64,
}

/// The outcome of one round for one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Firings, oldest first.
    pub fires: Vec<Fire>,
    /// Occurrences skipped and not reported by a firing (no firing followed them this round).
    pub skipped: i64,
    /// The next occurrence to look at; `None` when the trigger has no more.
    pub next: Option<DateTime<Utc>>,
}

/// The round of a schedule whose next occurrence is `due`, at `now`.
pub fn plan(
    trigger: &Trigger,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    policy: Misfire,
    lateness: Lateness,
) -> Plan {
    let window_start = now - lateness.window;
    let late_before = now - lateness.threshold;
    let mut fires = Vec::new();
    // Skipped since the last firing in `fires` (or since the round began).
    let mut pending_missed: i64 = 0;
    // FireOnce: the latest missed occurrence, held back until it is clear whether a later one
    // (missed or on time) stands for it.
    let mut held: Option<DateTime<Utc>> = None;
    let mut cursor = Some(due);
    let mut scanned = 0;
    while let Some(occurrence) = cursor.filter(|o| *o <= now) {
        if scanned == MAX_SCAN || fires.len() == lateness.max_fires {
            break;
        }
        scanned += 1;
        let expired = occurrence < window_start;
        let missed = occurrence < late_before;
        match (expired, missed, policy) {
            (true, _, _) | (false, true, Misfire::Skip) => pending_missed += 1,
            (false, true, Misfire::FireOnce) => {
                if held.replace(occurrence).is_some() {
                    pending_missed += 1;
                }
            }
            (false, _, _) => {
                if held.take().is_some() {
                    pending_missed += 1;
                }
                fires.push(Fire {
                    occurrence,
                    missed: std::mem::take(&mut pending_missed),
                });
            }
        }
        cursor = trigger.next_after(occurrence);
    }
    if let Some(occurrence) = held {
        fires.push(Fire {
            occurrence,
            missed: std::mem::take(&mut pending_missed),
        });
    }
    Plan {
        fires,
        skipped: pending_missed,
        next: cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::trigger::Spec;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2027-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + TimeDelta::minutes(minute)
    }

    /// Every minute from minute 0.
    fn every_minute() -> Trigger {
        Trigger::parse(
            &Spec::Interval {
                every: Some(TimeDelta::minutes(1)),
                start: Some(at(0)),
                end: None,
            },
            at(0),
        )
        .unwrap()
    }

    fn lateness() -> Lateness {
        Lateness {
            threshold: TimeDelta::seconds(30),
            window: TimeDelta::minutes(60),
            max_fires: 1000,
        }
    }

    fn occurrences(plan: &Plan) -> Vec<DateTime<Utc>> {
        plan.fires.iter().map(|f| f.occurrence).collect()
    }

    #[test]
    fn an_occurrence_on_time_fires_under_every_policy() {
        for policy in [Misfire::FireAll, Misfire::FireOnce, Misfire::Skip] {
            let now = at(5) + TimeDelta::seconds(1);
            let plan = plan(&every_minute(), at(5), now, policy, lateness());
            assert_eq!(occurrences(&plan), [at(5)], "{policy:?}");
            assert_eq!(plan.fires[0].missed, 0);
            assert_eq!(plan.next, Some(at(6)));
        }
    }

    #[test]
    fn nothing_fires_before_its_time() {
        let plan = plan(&every_minute(), at(5), at(4), Misfire::FireAll, lateness());
        assert!(plan.fires.is_empty());
        assert_eq!(plan.next, Some(at(5)));
    }

    #[test]
    fn fire_all_fires_every_missed_occurrence_in_order() {
        // Down from minute 3 to 7 (up again 10 s after minute 7).
        let now = at(7) + TimeDelta::seconds(10);
        let plan = plan(&every_minute(), at(3), now, Misfire::FireAll, lateness());
        assert_eq!(occurrences(&plan), [at(3), at(4), at(5), at(6), at(7)]);
        assert!(plan.fires.iter().all(|f| f.missed == 0));
        assert_eq!(plan.next, Some(at(8)));
    }

    #[test]
    fn fire_once_fires_the_latest_and_counts_the_rest() {
        let now = at(7) + TimeDelta::seconds(50);
        let plan = plan(&every_minute(), at(3), now, Misfire::FireOnce, lateness());
        assert_eq!(occurrences(&plan), [at(7)]);
        assert_eq!(plan.fires[0].missed, 4);
        assert_eq!(plan.next, Some(at(8)));
        // With an on-time occurrence at the end, it is the one that fires.
        let now = at(7) + TimeDelta::seconds(10);
        let plan = super::plan(&every_minute(), at(3), now, Misfire::FireOnce, lateness());
        assert_eq!(occurrences(&plan), [at(7)]);
        assert_eq!(plan.fires[0].missed, 4);
    }

    #[test]
    fn skip_fires_only_what_is_on_time() {
        let now = at(7) + TimeDelta::seconds(10);
        let plan = plan(&every_minute(), at(3), now, Misfire::Skip, lateness());
        assert_eq!(occurrences(&plan), [at(7)]);
        assert_eq!(plan.fires[0].missed, 4);
        let now = at(7) + TimeDelta::seconds(50);
        let plan = super::plan(&every_minute(), at(3), now, Misfire::Skip, lateness());
        assert!(plan.fires.is_empty());
        assert_eq!(plan.skipped, 5);
        assert_eq!(plan.next, Some(at(8)));
    }

    #[test]
    fn occurrences_older_than_the_window_are_skipped_under_every_policy() {
        let short = Lateness {
            window: TimeDelta::minutes(2),
            ..lateness()
        };
        let now = at(10) + TimeDelta::seconds(50);
        let plan = plan(&every_minute(), at(0), now, Misfire::FireAll, short);
        // Minutes 9 and 10 are inside the window (it starts at 8:50).
        assert_eq!(occurrences(&plan), [at(9), at(10)]);
        assert_eq!(plan.fires[0].missed, 9);
    }

    #[test]
    fn a_round_stops_at_its_firing_limit_and_the_next_goes_on() {
        let small = Lateness {
            max_fires: 2,
            ..lateness()
        };
        let now = at(5) + TimeDelta::seconds(10);
        let first = plan(&every_minute(), at(0), now, Misfire::FireAll, small);
        assert_eq!(occurrences(&first), [at(0), at(1)]);
        assert_eq!(first.next, Some(at(2)));
        let second = plan(&every_minute(), at(2), now, Misfire::FireAll, small);
        assert_eq!(occurrences(&second), [at(2), at(3)]);
    }

    #[test]
    fn a_one_shot_fires_once_and_has_nothing_after() {
        let trigger = Trigger::parse(&Spec::Once(Some(at(3))), at(0)).unwrap();
        let plan = plan(&trigger, at(3), at(3), Misfire::FireOnce, lateness());
        assert_eq!(occurrences(&plan), [at(3)]);
        assert_eq!(plan.next, None);
    }
}
