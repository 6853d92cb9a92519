//! The write model: an append-only table of task events. Appending checks the expected version in
//! `task_heads` and relies on the unique (task, version) key, so a concurrent writer loses with
//! ABORTED and the current etag. Every appended event is put in the outbox in the same transaction.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgPool, Postgres, Row as _};
use taskmesh_contracts::tasks_v1::JobStatus;
use taskmesh_events::{Outbox, OutboxRows, OutgoingEvent};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::db::claim_request_id;
use uuid::Uuid;

use crate::domain::aggregate::{TaskState, etag};
use crate::domain::events::{DecodeError, TaskEvent};
use crate::domain::names::TaskName;
use crate::error::{Error, Refusal};

/// Reads and appends task events.
#[derive(Debug, Clone)]
pub struct EventStore {
    pool: PgPool,
    outbox: Outbox,
}

/// A quota to check when a task lands on a board (created, undeleted, moved there).
#[derive(Debug, Clone)]
pub struct BoardQuota {
    /// `projects/{p}/boards/{b}`.
    pub board: String,
    /// Most live tasks allowed on it.
    pub limit: i64,
}

/// One append: the events of one command on one task.
#[derive(Debug)]
pub struct Append<'a> {
    /// The task.
    pub task: &'a TaskName,
    /// The version the command was decided on (0 for a new task).
    pub expected: i64,
    /// The events, with versions `expected + 1 ..`.
    pub events: Vec<TaskEvent>,
    /// The task's board after the events.
    pub board: String,
    /// Whether the task is deleted after the events.
    pub deleted: bool,
    /// The task's board and whether it was deleted before the events (`None` for a new task).
    pub before: Option<(String, bool)>,
    /// The task's state after the events ([`TaskState::snapshot`]), stored with the head.
    pub snapshot: Vec<u8>,
    /// Check this quota first.
    pub quota: Option<BoardQuota>,
    /// The request's idempotency key, if it has one.
    pub request: Option<RequestKey>,
    /// The resource the request makes, when it is not the task (a comment, a work log).
    pub resource: Option<&'a str>,
}

/// An idempotency key: the RPC and the caller's `request_id` (kept per caller). The first append
/// that claims it records the resource it made; the same caller's retry gets that resource back
/// instead of a second one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestKey {
    /// `CreateTask`, `AddComment`, `LogWork`.
    pub method: &'static str,
    /// The request id.
    pub id: Uuid,
}

/// What an append did.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    /// The events are stored.
    Stored,
    /// The request id was used before: the resource the first request made.
    Replayed(String),
}

impl EventStore {
    /// A store over `pool` that publishes through `outbox`.
    pub fn new(pool: PgPool, outbox: Outbox) -> Self {
        Self { pool, outbox }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Rebuilds a task from its events; `None` when it has none.
    pub async fn load(&self, task: Uuid) -> Result<Option<TaskState>, Error> {
        let head: Option<Head> = sqlx::query_as(
            "SELECT snapshot, snapshot_version, version FROM task_heads WHERE task_id = $1",
        )
        .bind(task)
        .fetch_optional(&self.pool)
        .await?;
        match head {
            Some(head) => self.rebuild(task, head).await,
            None => Ok(None),
        }
    }

    /// Rebuilds a task and reads the status of its job as execution last reported it, in one
    /// query when the snapshot is current (as it is for every task written since snapshots).
    pub async fn load_with_job_status(
        &self,
        task: Uuid,
    ) -> Result<Option<(TaskState, Option<JobStatus>)>, Error> {
        type Row = (Option<Vec<u8>>, i64, i64, Option<Vec<u8>>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT h.snapshot, h.snapshot_version, h.version, s.status \
             FROM task_heads h LEFT JOIN task_job_status s ON s.task_id = h.task_id \
             WHERE h.task_id = $1",
        )
        .bind(task)
        .fetch_optional(&self.pool)
        .await?;
        let Some((snapshot, snapshot_version, version, status)) = row else {
            return Ok(None);
        };
        let head = Head {
            snapshot,
            snapshot_version,
            version,
        };
        let Some(state) = self.rebuild(task, head).await? else {
            return Ok(None);
        };
        // A status that does not decode is left out, as the lists do.
        let status = status.and_then(|bytes| JobStatus::decode(bytes.as_slice()).ok());
        Ok(Some((state, status)))
    }

    /// The state at `head`: its snapshot, then any events after it.
    async fn rebuild(&self, task: Uuid, head: Head) -> Result<Option<TaskState>, Error> {
        let mut state = match head.snapshot {
            Some(bytes) if head.snapshot_version > 0 => {
                Some(TaskState::from_snapshot(&bytes).map_err(|e| {
                    Error::CorruptEvent(DecodeError {
                        event_type: "snapshot".to_owned(),
                        reason: e.to_string(),
                    })
                })?)
            }
            _ => None,
        };
        let from = state.as_ref().map_or(0, |s| s.version);
        if from < head.version {
            // Events after the snapshot (none, unless the head is older than snapshots).
            let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
                "SELECT event_type, payload FROM task_events WHERE task_id = $1 AND version > $2 \
                 ORDER BY version",
            )
            .bind(task)
            .bind(from)
            .fetch_all(&self.pool)
            .await?;
            for (event_type, payload) in rows {
                let event =
                    TaskEvent::decode(&event_type, &payload).map_err(Error::CorruptEvent)?;
                state.get_or_insert_with(TaskState::default).apply(&event);
            }
        }
        Ok(state)
    }

    /// Appends the events of one command with their outbox rows and the board counts, in one
    /// statement ([`APPEND_NEW`] or [`APPEND_NEXT`]): one round trip, atomic without a transaction
    /// around it. A request id needs a transaction, to claim it with the append.
    pub async fn append(
        &self,
        context: &CallContext,
        append: Append<'_>,
    ) -> Result<Appended, Error> {
        let name = append.task.to_string();
        let statement = self.statement(context, &append, &name)?;
        let stored = match append.request {
            None => stored(statement.fetch_one(&self.pool).await),
            Some(RequestKey { method, id }) => {
                let mut tx = self.pool.begin().await?;
                let resource = append.resource.unwrap_or(&name);
                if let Some(existing) =
                    claim_request_id(&mut tx, method, &context.caller, id, resource).await?
                {
                    return Ok(Appended::Replayed(existing));
                }
                let stored = stored(statement.fetch_one(&mut *tx).await);
                // The claim stands only with the resource it names.
                if matches!(stored, Ok(1)) {
                    tx.commit().await?;
                }
                stored
            }
        };
        let stored = match stored {
            Ok(stored) => stored,
            Err(err) => return Err(self.refusal(err, &append, &name).await),
        };
        if stored == 0 {
            // The head moved on since the command was decided.
            let current: i64 =
                sqlx::query_scalar("SELECT version FROM task_heads WHERE task_id = $1")
                    .bind(append.task.task)
                    .fetch_optional(&self.pool)
                    .await?
                    .unwrap_or(0);
            return Err(Error::EtagMismatch {
                resource: name,
                current: etag(current),
            });
        }
        self.outbox.wake();
        Ok(Appended::Stored)
    }

    /// The append statement of `append`, bound.
    fn statement<'q>(
        &self,
        context: &CallContext,
        append: &Append<'_>,
        name: &str,
    ) -> Result<Query<'q, Postgres, PgArguments>, Error> {
        let now = Utc::now();
        let mut outgoing = Vec::with_capacity(append.events.len());
        let (mut versions, mut types, mut payloads) = (Vec::new(), Vec::new(), Vec::new());
        for event in &append.events {
            let full_name = event.full_name();
            let payload = event.encode();
            let mut out = OutgoingEvent::from_encoded(&full_name, name, payload.clone())
                .caused_by(&context.correlation_id, &context.traceparent);
            out.time = now;
            versions.push(event.version());
            types.push(full_name);
            payloads.push(payload);
            outgoing.push(out);
        }
        let ids: Vec<Uuid> = outgoing.iter().map(|e| e.id).collect();
        let times: Vec<DateTime<Utc>> = outgoing.iter().map(|e| e.time).collect();
        let rows = self.outbox.rows(&outgoing)?;
        let moves = BoardMove::of(append);
        let last = append.expected + i64::try_from(append.events.len()).unwrap_or(0);
        let query = if append.expected == 0 {
            sqlx::query(&APPEND_NEW)
                .bind(append.task.task)
                .bind(append.task.project.clone())
        } else {
            sqlx::query(&APPEND_NEXT)
                .bind(append.task.task)
                .bind(append.expected)
        };
        let query = query
            .bind(append.board.clone())
            .bind(last)
            .bind(append.deleted)
            .bind(append.snapshot.clone())
            .bind(versions)
            .bind(ids)
            .bind(types)
            .bind(payloads)
            .bind(times)
            .bind(moves.leave)
            .bind(moves.land)
            .bind(moves.limit);
        Ok(rows.bind(query))
    }

    /// What a failed append statement means: TASK_QUOTA_EXCEEDED when the board is full, ABORTED
    /// when a concurrent writer stored the same version first, else the database's failure.
    async fn refusal(&self, err: sqlx::Error, append: &Append<'_>, name: &str) -> Error {
        let Some(db) = err.as_database_error() else {
            return Error::Database(err);
        };
        match (db.code().as_deref(), db.constraint()) {
            (Some("23514"), Some(WITHIN_QUOTA)) => {
                let moves = BoardMove::of(append);
                let board = moves.land.unwrap_or_default();
                let live = sqlx::query_scalar("SELECT live FROM board_live_tasks WHERE board = $1")
                    .bind(&board)
                    .fetch_optional(&self.pool)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(moves.limit);
                Error::Refused(Refusal::TaskQuotaExceeded {
                    board,
                    live,
                    limit: moves.limit,
                })
            }
            (Some("23505"), _) => Error::EtagMismatch {
                resource: name.to_owned(),
                current: etag(append.expected + 1),
            },
            _ => Error::Database(err),
        }
    }
}

/// How many heads the append statement wrote (1, or 0 when the head had moved on).
fn stored(row: Result<PgRow, sqlx::Error>) -> Result<i64, sqlx::Error> {
    row.and_then(|row| row.try_get(0))
}

/// The constraint that refuses a task over its board's quota (migration 0006).
const WITHIN_QUOTA: &str = "board_live_tasks_within_quota";

/// How an append changes the board counts: a task that leaves a board (deleted, moved away) takes
/// one off it; one that lands on a board (created, undeleted, moved there) adds one, refused by
/// [`WITHIN_QUOTA`] when the board holds its quota already. One row per board, bumped in place:
/// the cost does not grow with the board.
struct BoardMove {
    leave: Option<String>,
    land: Option<String>,
    /// The quota of the board landed on (no limit without one).
    limit: i64,
}

impl BoardMove {
    fn of(append: &Append<'_>) -> Self {
        let was_on = append
            .before
            .as_ref()
            .filter(|(_, deleted)| !deleted)
            .map(|(board, _)| board.as_str());
        let now_on = (!append.deleted).then_some(append.board.as_str());
        if was_on == now_on {
            return Self {
                leave: None,
                land: None,
                limit: i64::MAX,
            };
        }
        let limit = append
            .quota
            .as_ref()
            .filter(|quota| Some(quota.board.as_str()) == now_on)
            .map_or(i64::MAX, |quota| quota.limit);
        Self {
            leave: was_on.map(str::to_owned),
            land: now_on.map(str::to_owned),
            limit,
        }
    }
}

/// The head of a new task: parameters 1-6 are task id, project, board, version, deleted,
/// snapshot.
static APPEND_NEW: LazyLock<String> = LazyLock::new(|| {
    append_sql(
        "INSERT INTO task_heads (task_id, project_id, board, version, deleted, snapshot, \
         snapshot_version) VALUES ($1, $2, $3, $4, $5, $6, $4) RETURNING task_id",
    )
});

/// The head of an existing task, moved on only from the version the command was decided on:
/// parameters 1-6 are task id, that version, board, version, deleted, snapshot.
static APPEND_NEXT: LazyLock<String> = LazyLock::new(|| {
    append_sql(
        "UPDATE task_heads SET version = $4, board = $3, deleted = $5, snapshot = $6, \
         snapshot_version = $4 WHERE task_id = $1 AND version = $2 RETURNING task_id",
    )
});

/// One statement for the whole append, each part written only when the head was: the events
/// (7-11: versions, ids, types, payloads, times), the board counts (12: board left, 13: board
/// landed on, 14: its quota) and the outbox rows (15-24). Answers 1 when stored, 0 when the head
/// had moved on.
fn append_sql(head: &str) -> String {
    format!(
        "WITH head AS ({head}), \
         events AS (INSERT INTO task_events (task_id, version, event_id, event_type, payload, \
           occurred_at) \
           SELECT head.task_id, e.* FROM head, \
           unnest($7::bigint[], $8::uuid[], $9::text[], $10::bytea[], $11::timestamptz[]) AS e), \
         leave AS (UPDATE board_live_tasks SET live = live - 1, quota = {max} \
           WHERE board = $12 AND live > 0 AND EXISTS (SELECT 1 FROM head)), \
         land AS (INSERT INTO board_live_tasks (board, live, quota) \
           SELECT $13, 1, $14 FROM head WHERE $13::text IS NOT NULL \
           ON CONFLICT (board) DO UPDATE \
           SET live = board_live_tasks.live + 1, quota = EXCLUDED.quota), \
         outbox AS ({outbox} WHERE EXISTS (SELECT 1 FROM head)) \
         SELECT count(*) FROM head",
        max = i64::MAX,
        outbox = OutboxRows::insert_sql(15),
    )
}

/// A task's head row: its snapshot (with the version it is of) and its current version.
#[derive(sqlx::FromRow)]
struct Head {
    snapshot: Option<Vec<u8>>,
    snapshot_version: i64,
    version: i64,
}
