//! Claiming and firing due schedules. One transaction claims up to a batch of active schedules
//! whose next fire time has come (`FOR UPDATE SKIP LOCKED` over the `schedules_due` index, so
//! replicas share the work and never take the same row), writes one `ScheduleTriggered` per
//! firing into the outbox and moves each schedule to its next occurrence. The occurrence and its
//! event commit together or not at all: every occurrence fires exactly once, across replicas,
//! restarts and `kill -9`.

use chrono::{DateTime, Utc};
use taskmesh_contracts::scheduler_v1::{ScheduleTriggered, State};
use taskmesh_events::OutgoingEvent;
use taskmesh_events::outbox::OutboxRows;
use taskmesh_mesh::time::to_timestamp as ts;

use super::{COLUMNS, Row, Store, state_number};
use crate::config::Firing;
use crate::domain::{self, firing};
use crate::error::Error;

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Schedules claimed.
    pub claimed: usize,
    /// Firings made.
    pub fired: usize,
    /// Occurrences skipped (misfire policy, catch-up window).
    pub skipped: i64,
}

/// The new position of one fired schedule, in column arrays for one UPDATE.
#[derive(Debug, Default)]
struct Moves {
    names: Vec<String>,
    next: Vec<Option<DateTime<Utc>>>,
    states: Vec<i16>,
    last: Vec<Option<DateTime<Utc>>>,
    counts: Vec<i64>,
}

impl Store {
    /// Fires the schedules due at `now`, up to `settings.batch` of them; returns what it did.
    pub async fn fire_due(&self, settings: &Firing, now: DateTime<Utc>) -> Result<Round, Error> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM schedules WHERE state = $1 AND next_fire_time <= $2 \
             ORDER BY next_fire_time LIMIT $3 FOR UPDATE SKIP LOCKED"
        ))
        .bind(state_number(State::Active))
        .bind(now)
        .bind(i64::from(settings.batch))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(Round::default());
        }
        let mut round = Round {
            claimed: rows.len(),
            ..Round::default()
        };
        let mut events = Vec::new();
        let mut moves = Moves::default();
        for row in &rows {
            let Some(due) = row.next_fire_time else {
                continue;
            };
            let plan = match domain::stored_trigger(&row.trigger()) {
                Ok(trigger) => firing::plan(
                    &trigger,
                    due,
                    now,
                    domain::misfire(row.misfire_policy()),
                    settings.lateness(row.catch_up_window()),
                ),
                // Stored triggers were checked when they were set; one that no longer parses
                // (a zone dropped from the database) ends the schedule instead of failing every
                // round.
                Err(err) => {
                    tracing::error!(schedule = %row.name, error = %err, "stored trigger unreadable; schedule completed");
                    firing::Plan {
                        fires: Vec::new(),
                        skipped: 0,
                        next: None,
                    }
                }
            };
            let action = row.action();
            for (n, fire) in plan.fires.iter().enumerate() {
                let sequence = row.fire_count + i64::try_from(n).unwrap_or(0) + 1;
                let occurrence_id = domain::occurrence_id(&row.name, fire.occurrence);
                let event = ScheduleTriggered {
                    schedule: row.name.clone(),
                    occurrence_time: Some(ts(fire.occurrence)),
                    fire_time: Some(ts(now)),
                    occurrence_id: occurrence_id.to_string(),
                    sequence,
                    missed: fire.missed,
                    owner: row.owner.clone(),
                    action: Some(action.clone()),
                    status: i32::from(row.task_status),
                };
                let mut outgoing =
                    OutgoingEvent::new(&row.name, &event).caused_by(&occurrence_id.to_string(), "");
                outgoing.id = occurrence_id;
                outgoing.time = now;
                events.push(outgoing);
            }
            round.fired += plan.fires.len();
            round.skipped += plan.skipped + plan.fires.iter().map(|f| f.missed).sum::<i64>();
            moves.names.push(row.name.clone());
            moves.states.push(state_number(if plan.next.is_some() {
                State::Active
            } else {
                State::Completed
            }));
            moves.next.push(plan.next);
            moves.last.push(
                plan.fires
                    .last()
                    .map(|f| f.occurrence)
                    .or(row.last_fire_time),
            );
            moves
                .counts
                .push(i64::try_from(plan.fires.len()).unwrap_or(0));
        }
        // The etag (version) stays: firing is not an edit, and a frequent schedule would
        // otherwise turn every client's etag stale.
        sqlx::query(
            "UPDATE schedules s SET next_fire_time = m.next, state = m.state, \
             last_fire_time = m.last, fire_count = s.fire_count + m.count \
             FROM unnest($1::text[], $2::timestamptz[], $3::smallint[], $4::timestamptz[], \
             $5::bigint[]) AS m(name, next, state, last, count) WHERE s.name = m.name",
        )
        .bind(&moves.names)
        .bind(&moves.next)
        .bind(&moves.states)
        .bind(&moves.last)
        .bind(&moves.counts)
        .execute(&mut *tx)
        .await?;
        if !events.is_empty() {
            let rows = self.outbox.rows(&events)?;
            rows.bind(sqlx::query(&OutboxRows::insert_sql(1)))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if !events.is_empty() {
            self.outbox.wake();
        }
        Ok(round)
    }

    /// The earliest moment something is due: an active schedule's next fire time or an unfired
    /// alarm (one round trip, both through their partial indexes).
    pub async fn next_wake(&self) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(sqlx::query_scalar(
            "SELECT LEAST((SELECT min(next_fire_time) FROM schedules WHERE state = $1), \
                          (SELECT min(fire_time) FROM alarms WHERE NOT fired))",
        )
        .bind(state_number(State::Active))
        .fetch_one(&self.pool)
        .await?)
    }
}
