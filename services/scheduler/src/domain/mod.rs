//! The scheduler's rules, free of I/O: triggers and their occurrences ([`trigger`]), what a due
//! schedule fires ([`firing`]), and the contract's values read into them.

pub mod firing;
pub mod recurrence;
pub mod reminders;
pub mod secrets;
pub mod trigger;

use chrono::{DateTime, TimeDelta, Utc};
use taskmesh_contracts::scheduler_v1::{self as pb, MisfirePolicy};
use taskmesh_mesh::time::{from_timestamp, to_timestamp};
use uuid::Uuid;

use self::firing::Misfire;
use self::trigger::{Invalid, Spec, Trigger};

/// Catch-up window when a schedule sets none.
pub const DEFAULT_CATCH_UP_WINDOW: TimeDelta = TimeDelta::hours(1);

/// The namespace of occurrence ids (a UUIDv5 of the schedule's name and the occurrence time).
const OCCURRENCE_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2d0e_8b7a_4c55_9e3f_7461_736b_6d65);

/// The id of one occurrence of a schedule: the same schedule and instant always give the same
/// UUID, which makes the firing's effects idempotent (it is the request id of the task it
/// creates and the `Nats-Msg-Id` of its event).
pub fn occurrence_id(schedule: &str, occurrence: DateTime<Utc>) -> Uuid {
    let key = format!(
        "{schedule}@{}",
        occurrence.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    );
    Uuid::new_v5(&OCCURRENCE_NAMESPACE, key.as_bytes())
}

/// The contract's trigger read into a [`Spec`].
pub fn spec_of(trigger: &pb::Trigger) -> Result<Spec<'_>, Invalid> {
    use pb::trigger::Kind;
    let duration = |d: &Option<prost_types::Duration>| {
        d.as_ref()
            .map(|d| TimeDelta::seconds(d.seconds) + TimeDelta::nanoseconds(i64::from(d.nanos)))
    };
    match trigger.kind.as_ref() {
        Some(Kind::Once(once)) => Ok(Spec::Once(from_timestamp(once.fire_time))),
        Some(Kind::Interval(interval)) => Ok(Spec::Interval {
            every: duration(&interval.every),
            start: from_timestamp(interval.start_time),
            end: from_timestamp(interval.end_time),
        }),
        Some(Kind::Cron(cron)) => Ok(Spec::Cron {
            expression: &cron.expression,
            time_zone: &cron.time_zone,
            start: from_timestamp(cron.start_time),
            end: from_timestamp(cron.end_time),
        }),
        Some(Kind::Recurrence(recurrence)) => Ok(Spec::Recurrence(&recurrence.rule)),
        None => Err(Invalid {
            field: "schedule.trigger".to_owned(),
            problem: "one of once, interval, cron or recurrence is required".to_owned(),
        }),
    }
}

/// Parses `trigger` as the contract gives it and returns it with its defaults filled in (an
/// interval without a start starts one period after `now`), so that what is stored needs no
/// `now` to be read again.
pub fn parse_trigger(
    trigger: &pb::Trigger,
    now: DateTime<Utc>,
) -> Result<(Trigger, pb::Trigger), Invalid> {
    let parsed = Trigger::parse(&spec_of(trigger)?, now)?;
    let mut stored = trigger.clone();
    if let (Some(pb::trigger::Kind::Interval(interval)), Trigger::Interval { start, .. }) =
        (stored.kind.as_mut(), &parsed)
    {
        interval.start_time = Some(to_timestamp(*start));
    }
    Ok((parsed, stored))
}

/// A stored trigger (its defaults already filled in).
pub fn stored_trigger(trigger: &pb::Trigger) -> Result<Trigger, Invalid> {
    // `now` only fills defaults, and stored triggers have theirs.
    Trigger::parse(&spec_of(trigger)?, DateTime::<Utc>::MIN_UTC)
}

/// The first occurrence of a new (or changed, or resumed) trigger, strictly after `now`; INVALID
/// when it has none, so that a schedule that could never fire is refused.
pub fn first_occurrence(trigger: &Trigger, now: DateTime<Utc>) -> Result<DateTime<Utc>, Invalid> {
    // A one-shot or interval start at this very instant still counts.
    trigger
        .next_after(now - TimeDelta::milliseconds(1))
        .ok_or_else(|| Invalid {
            field: "schedule.trigger".to_owned(),
            problem: "has no occurrence after now (in the past, ended, or never matching)"
                .to_owned(),
        })
}

/// The policy in force.
pub fn misfire(policy: MisfirePolicy) -> Misfire {
    match policy {
        MisfirePolicy::FireAll => Misfire::FireAll,
        MisfirePolicy::Skip => Misfire::Skip,
        MisfirePolicy::FireOnce | MisfirePolicy::Unspecified => Misfire::FireOnce,
    }
}

/// The catch-up window a schedule asked for, or the default.
pub fn catch_up_window(window: Option<&prost_types::Duration>) -> TimeDelta {
    match window {
        Some(d) if d.seconds > 0 || d.nanos > 0 => {
            TimeDelta::seconds(d.seconds) + TimeDelta::nanoseconds(i64::from(d.nanos))
        }
        _ => DEFAULT_CATCH_UP_WINDOW,
    }
}

#[cfg(test)]
mod tests {
    use chrono::SubsecRound;

    use super::*;

    #[test]
    fn an_occurrence_has_one_id_whoever_computes_it() {
        let at = DateTime::parse_from_rfc3339("2027-01-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = occurrence_id("projects/p/schedules/s", at);
        assert_eq!(a, occurrence_id("projects/p/schedules/s", at));
        assert_ne!(a, occurrence_id("projects/p/schedules/t", at));
        assert_ne!(
            a,
            occurrence_id("projects/p/schedules/s", at + TimeDelta::seconds(1))
        );
    }

    #[test]
    fn a_stored_interval_keeps_the_start_it_was_given() {
        let now = Utc::now();
        let trigger = pb::Trigger {
            kind: Some(pb::trigger::Kind::Interval(pb::Interval {
                every: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
                start_time: None,
                end_time: None,
            })),
        };
        let (parsed, stored) = parse_trigger(&trigger, now).unwrap();
        let again = stored_trigger(&stored).unwrap();
        assert_eq!(parsed.next_after(now), again.next_after(now));
        // One period from now, on a whole second.
        assert_eq!(
            first_occurrence(&again, now).unwrap(),
            (now + TimeDelta::seconds(60)).trunc_subsecs(0)
        );
    }
}
