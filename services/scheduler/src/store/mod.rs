//! The scheduler database: schedules with their next occurrence. Reads and the standard methods
//! live here; claiming and firing due schedules is [`firing`].

pub mod alarms;
pub mod firing;
pub mod projects;
pub mod reminders;

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::{PgConnection, PgPool};
use taskmesh_contracts::scheduler_v1::{Action, MisfirePolicy, Schedule, State, Trigger};
use taskmesh_events::Outbox;
use taskmesh_mesh::aip::{self, Page};
use taskmesh_mesh::time::to_timestamp as ts;
use uuid::Uuid;

use crate::domain::secrets;
use crate::error::{Error, Reason};

const COLUMNS: &str = "name, project, display_name, trigger, action, template_column, task_status, misfire_policy, \
                       catch_up_window_ms, state, next_fire_time, last_fire_time, fire_count, \
                       owner, pause_reason, create_time, update_time, version";

/// One schedule row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    /// Resource name.
    pub name: String,
    /// Project id.
    pub project: String,
    /// Display name.
    pub display_name: String,
    /// Encoded `Trigger`, defaults filled in.
    pub trigger: Vec<u8>,
    /// Encoded `Action` (a template job's secret headers sealed).
    pub action: Vec<u8>,
    /// A task template's column, or empty.
    pub template_column: String,
    /// `taskmesh.tasks.v1.Status` of a template's column.
    pub task_status: i16,
    /// `MisfirePolicy` number.
    pub misfire_policy: i16,
    /// Catch-up window.
    pub catch_up_window_ms: i64,
    /// `State` number.
    pub state: i16,
    /// Next occurrence (kept while paused).
    pub next_fire_time: Option<DateTime<Utc>>,
    /// Latest firing's occurrence.
    pub last_fire_time: Option<DateTime<Utc>>,
    /// Firings so far.
    pub fire_count: i64,
    /// The user it acts for.
    pub owner: String,
    /// Why the scheduler paused it by itself.
    pub pause_reason: String,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
    /// Change counter (the etag).
    pub version: i64,
}

impl Row {
    /// The trigger as stored.
    pub fn trigger(&self) -> Trigger {
        Trigger::decode(self.trigger.as_slice()).unwrap_or_default()
    }

    /// The action as stored (secrets sealed).
    pub fn action(&self) -> Action {
        Action::decode(self.action.as_slice()).unwrap_or_default()
    }

    /// The state.
    pub fn state(&self) -> State {
        State::try_from(i32::from(self.state)).unwrap_or(State::Unspecified)
    }

    /// The misfire policy.
    pub fn misfire_policy(&self) -> MisfirePolicy {
        MisfirePolicy::try_from(i32::from(self.misfire_policy)).unwrap_or(MisfirePolicy::FireOnce)
    }

    /// The catch-up window.
    pub fn catch_up_window(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::milliseconds(self.catch_up_window_ms)
    }

    /// The etag.
    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }

    /// The schedule as clients see it: secrets redacted, no next fire time unless active.
    pub fn to_proto(&self) -> Schedule {
        let window = self.catch_up_window_ms;
        Schedule {
            name: self.name.clone(),
            display_name: self.display_name.clone(),
            trigger: Some(self.trigger()),
            action: Some(secrets::shown(self.action())),
            misfire_policy: i32::from(self.misfire_policy),
            catch_up_window: Some(prost_types::Duration {
                seconds: window / 1000,
                nanos: i32::try_from((window % 1000) * 1_000_000).unwrap_or(0),
            }),
            state: i32::from(self.state),
            next_fire_time: (self.state() == State::Active)
                .then_some(self.next_fire_time)
                .flatten()
                .map(ts),
            last_fire_time: self.last_fire_time.map(ts),
            fire_count: self.fire_count,
            owner: self.owner.clone(),
            create_time: Some(ts(self.create_time)),
            update_time: Some(ts(self.update_time)),
            etag: self.etag(),
            pause_reason: self.pause_reason.clone(),
        }
    }
}

/// A schedule to create, checked and with its first occurrence.
#[derive(Debug)]
pub struct NewSchedule {
    /// Resource name.
    pub name: String,
    /// Project id.
    pub project: String,
    /// Display name.
    pub display_name: String,
    /// Trigger with defaults.
    pub trigger: Trigger,
    /// Action, secrets sealed.
    pub action: Action,
    /// Status of a template's column.
    pub task_status: i32,
    /// Policy.
    pub misfire_policy: MisfirePolicy,
    /// Window.
    pub catch_up_window_ms: i64,
    /// First occurrence.
    pub next_fire_time: DateTime<Utc>,
    /// The creator.
    pub owner: String,
    /// Idempotency key.
    pub request_id: Option<Uuid>,
}

/// Changes of an update; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct Changes {
    /// New display name.
    pub display_name: Option<String>,
    /// New trigger with its first occurrence.
    pub trigger: Option<(Trigger, DateTime<Utc>)>,
    /// New action and its column's status.
    pub action: Option<(Action, i32)>,
    /// New policy.
    pub misfire_policy: Option<MisfirePolicy>,
    /// New window.
    pub catch_up_window_ms: Option<i64>,
}

/// Reads and changes schedules.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    outbox: Outbox,
}

impl Store {
    /// A store over `pool`, publishing through `outbox`.
    pub fn new(pool: PgPool, outbox: Outbox) -> Self {
        Self { pool, outbox }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The schedule `name`.
    pub async fn get(&self, name: &str) -> Result<Row, Error> {
        fetch(&mut *self.pool.acquire().await?, name, false).await
    }

    /// Creates a schedule; a repeated request id of the same owner returns the first one. A
    /// project holds at most `limit` schedules.
    pub async fn create(&self, new: NewSchedule, limit: i64) -> Result<Row, Error> {
        let mut tx = self.pool.begin().await?;
        if let Some(request_id) = new.request_id
            && let Some(existing) = taskmesh_mesh::db::claim_request_id(
                &mut tx,
                "CreateSchedule",
                &new.owner,
                request_id,
                &new.name,
            )
            .await?
        {
            tx.rollback().await?;
            return self.get(&existing).await;
        }
        let held: i64 = sqlx::query_scalar("SELECT count(*) FROM schedules WHERE project = $1")
            .bind(&new.project)
            .fetch_one(&mut *tx)
            .await?;
        if held >= limit {
            return Err(Error::Refused {
                reason: Reason::ScheduleQuotaExceeded,
                message: format!(
                    "projects/{} already holds {held} schedules, the limit is {limit}",
                    new.project
                ),
            });
        }
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO schedules (name, project, display_name, trigger, action, task_status, \
             misfire_policy, catch_up_window_ms, state, next_fire_time, owner, template_column, \
             create_time, update_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now(), now()) \
             RETURNING {COLUMNS}"
        ))
        .bind(&new.name)
        .bind(&new.project)
        .bind(&new.display_name)
        .bind(new.trigger.encode_to_vec())
        .bind(new.action.encode_to_vec())
        .bind(status_number(new.task_status))
        .bind(policy_number(new.misfire_policy))
        .bind(new.catch_up_window_ms)
        .bind(state_number(State::Active))
        .bind(new.next_fire_time)
        .bind(&new.owner)
        .bind(template_column(&new.action))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// One page of a project's schedules, oldest first.
    pub async fn list(&self, project: &str, page: Page) -> Result<(Vec<Row>, String), Error> {
        let mut query =
            sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM schedules WHERE project = "));
        query.push_bind(project);
        page.push_sql(&mut query, "create_time, name");
        let rows: Vec<Row> = query.build_query_as().fetch_all(&self.pool).await?;
        Ok(aip::split_page(rows, page, project))
    }

    /// Applies `changes` to `name` (whose etag, when given, must be current); `owner` becomes
    /// the one it acts for.
    pub async fn update(
        &self,
        name: &str,
        etag: &str,
        owner: &str,
        changes: Changes,
    ) -> Result<Row, Error> {
        let mut tx = self.pool.begin().await?;
        let current = fetch(&mut tx, name, true).await?;
        check_etag(&current, etag)?;
        let (trigger, next) = match &changes.trigger {
            Some((trigger, next)) => (
                trigger.encode_to_vec(),
                current.next_fire_time.map(|_| *next).or(Some(*next)),
            ),
            None => (current.trigger.clone(), current.next_fire_time),
        };
        // A completed schedule given a new trigger comes back to life.
        let state = match (current.state(), changes.trigger.is_some()) {
            (State::Completed, true) => State::Active,
            (state, _) => state,
        };
        let (action, column, status) = match changes.action {
            Some((action, status)) => (
                action.encode_to_vec(),
                template_column(&action),
                status_number(status),
            ),
            None => (
                current.action.clone(),
                current.template_column.clone(),
                current.task_status,
            ),
        };
        let row: Row = sqlx::query_as(&format!(
            "UPDATE schedules SET display_name = $2, trigger = $3, action = $4, task_status = $5, \
             misfire_policy = $6, catch_up_window_ms = $7, next_fire_time = $8, state = $9, \
             owner = $10, template_column = $11, update_time = now(), version = version + 1 \
             WHERE name = $1 RETURNING {COLUMNS}"
        ))
        .bind(name)
        .bind(changes.display_name.unwrap_or(current.display_name))
        .bind(trigger)
        .bind(action)
        .bind(status)
        .bind(
            changes
                .misfire_policy
                .map_or(current.misfire_policy, policy_number),
        )
        .bind(
            changes
                .catch_up_window_ms
                .unwrap_or(current.catch_up_window_ms),
        )
        .bind(next)
        .bind(state_number(state))
        .bind(owner)
        .bind(column)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Deletes `name`. A firing in progress finishes first (it holds the row); none follows.
    pub async fn delete(&self, name: &str, etag: &str) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        let current = fetch(&mut tx, name, true).await?;
        check_etag(&current, etag)?;
        sqlx::query("DELETE FROM schedules WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Pauses `name`; pausing a paused schedule changes nothing.
    pub async fn pause(&self, name: &str, etag: &str) -> Result<Row, Error> {
        let mut tx = self.pool.begin().await?;
        let current = fetch(&mut tx, name, true).await?;
        check_etag(&current, etag)?;
        let row = match current.state() {
            State::Paused => current,
            State::Completed => {
                return Err(Error::Refused {
                    reason: Reason::ScheduleCompleted,
                    message: format!("{name} has no occurrence left; give it a new trigger"),
                });
            }
            _ => set_state(&mut tx, name, State::Paused, None, "").await?,
        };
        tx.commit().await?;
        Ok(row)
    }

    /// Resumes `name` for `owner`. What it missed while paused follows its misfire policy (its
    /// next fire time stayed where it was). Resuming an active schedule changes nothing.
    pub async fn resume(&self, name: &str, etag: &str, owner: &str) -> Result<Row, Error> {
        let mut tx = self.pool.begin().await?;
        let current = fetch(&mut tx, name, true).await?;
        check_etag(&current, etag)?;
        let row = match current.state() {
            State::Active => current,
            State::Completed => {
                return Err(Error::Refused {
                    reason: Reason::ScheduleCompleted,
                    message: format!("{name} has no occurrence left; give it a new trigger"),
                });
            }
            _ => set_state(&mut tx, name, State::Active, Some(owner), "").await?,
        };
        tx.commit().await?;
        Ok(row)
    }
}

async fn fetch(conn: &mut PgConnection, name: &str, lock: bool) -> Result<Row, Error> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM schedules WHERE name = $1{lock}"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| Error::NotFound(name.to_owned()))
}

async fn set_state(
    conn: &mut PgConnection,
    name: &str,
    state: State,
    owner: Option<&str>,
    reason: &str,
) -> Result<Row, Error> {
    Ok(sqlx::query_as(&format!(
        "UPDATE schedules SET state = $2, owner = COALESCE($3, owner), pause_reason = $4, \
         update_time = now(), version = version + 1 WHERE name = $1 RETURNING {COLUMNS}"
    ))
    .bind(name)
    .bind(state_number(state))
    .bind(owner)
    .bind(reason)
    .fetch_one(conn)
    .await?)
}

fn check_etag(row: &Row, etag: &str) -> Result<(), Error> {
    if etag.is_empty() || etag == row.etag() {
        Ok(())
    } else {
        Err(Error::EtagMismatch {
            name: row.name.clone(),
            current: row.etag(),
        })
    }
}

/// The column of a task template, or empty for other actions.
fn template_column(action: &Action) -> String {
    match &action.kind {
        Some(taskmesh_contracts::scheduler_v1::action::Kind::CreateTask(template)) => {
            template.column.clone()
        }
        _ => String::new(),
    }
}

/// The stored number of a state.
pub fn state_number(state: State) -> i16 {
    i16::try_from(state as i32).unwrap_or(0)
}

fn policy_number(policy: MisfirePolicy) -> i16 {
    i16::try_from(policy as i32).unwrap_or(0)
}

fn status_number(status: i32) -> i16 {
    i16::try_from(status).unwrap_or(0)
}
