//! The write model: an append-only table of task events. Appending checks the expected version in
//! `task_heads` and relies on the unique (task, version) key, so a concurrent writer loses with
//! ABORTED and the current etag. Every appended event is put in the outbox in the same transaction.

use chrono::Utc;
use prost::Message;
use sqlx::PgPool;
use taskmesh_contracts::tasks_v1::JobStatus;
use taskmesh_events::{Outbox, OutgoingEvent};
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

    /// Appends the events of one command in one transaction with their outbox rows.
    pub async fn append(
        &self,
        context: &CallContext,
        append: Append<'_>,
    ) -> Result<Appended, Error> {
        let name = append.task.to_string();
        let mut tx = self.pool.begin().await?;

        if let Some(RequestKey { method, id }) = append.request {
            let resource = append.resource.unwrap_or(&name);
            if let Some(existing) =
                claim_request_id(&mut tx, method, &context.caller, id, resource).await?
            {
                return Ok(Appended::Replayed(existing));
            }
        }

        let last = append.expected + i64::try_from(append.events.len()).unwrap_or(0);
        if append.expected == 0 {
            sqlx::query(
                "INSERT INTO task_heads (task_id, project_id, board, version, deleted, snapshot, \
                 snapshot_version) VALUES ($1, $2, $3, $4, $5, $6, $4)",
            )
            .bind(append.task.task)
            .bind(&append.task.project)
            .bind(&append.board)
            .bind(last)
            .bind(append.deleted)
            .bind(&append.snapshot)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.conflict(e, &name, 0))?;
        } else {
            let updated = sqlx::query(
                "UPDATE task_heads SET version = $2, board = $3, deleted = $4, snapshot = $6, \
                 snapshot_version = $2 WHERE task_id = $1 AND version = $5",
            )
            .bind(append.task.task)
            .bind(last)
            .bind(&append.board)
            .bind(append.deleted)
            .bind(append.expected)
            .bind(&append.snapshot)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                let current: i64 =
                    sqlx::query_scalar("SELECT version FROM task_heads WHERE task_id = $1")
                        .bind(append.task.task)
                        .fetch_optional(&mut *tx)
                        .await?
                        .unwrap_or(0);
                return Err(Error::EtagMismatch {
                    resource: name,
                    current: etag(current),
                });
            }
        }

        for event in &append.events {
            let full_name = event.full_name();
            let payload = event.encode();
            let mut outgoing = OutgoingEvent::from_encoded(&full_name, &name, payload.clone())
                .caused_by(&context.correlation_id, &context.traceparent);
            outgoing.time = Utc::now();
            sqlx::query(
                "INSERT INTO task_events (task_id, version, event_id, event_type, payload, occurred_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(append.task.task)
            .bind(event.version())
            .bind(outgoing.id)
            .bind(&full_name)
            .bind(&payload)
            .bind(outgoing.time)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.conflict(e, &name, append.expected))?;
            self.outbox.enqueue(&mut tx, &outgoing).await?;
        }
        // Last before the commit: the board's counter row stays locked for as short as can be.
        count_live_tasks(&mut tx, &append).await?;
        tx.commit().await?;
        self.outbox.wake();
        Ok(Appended::Stored)
    }

    fn conflict(&self, err: sqlx::Error, name: &str, expected: i64) -> Error {
        if let sqlx::Error::Database(db) = &err
            && db.code().as_deref() == Some("23505")
        {
            return Error::EtagMismatch {
                resource: name.to_owned(),
                current: etag(expected + 1),
            };
        }
        Error::Database(err)
    }
}

/// Keeps `board_live_tasks` right for `append`: a task that leaves a board (deleted, moved away)
/// takes one off it; one that lands on a board (created, undeleted, moved there) adds one, refused
/// with TASK_QUOTA_EXCEEDED when the board holds its quota already. One row per board, bumped in
/// place: the cost does not grow with the board.
async fn count_live_tasks(tx: &mut sqlx::PgConnection, append: &Append<'_>) -> Result<(), Error> {
    let was_on = append
        .before
        .as_ref()
        .filter(|(_, deleted)| !deleted)
        .map(|(board, _)| board.as_str());
    let now_on = (!append.deleted).then_some(append.board.as_str());
    if was_on == now_on {
        return Ok(());
    }
    if let Some(board) = was_on {
        sqlx::query("UPDATE board_live_tasks SET live = live - 1 WHERE board = $1 AND live > 0")
            .bind(board)
            .execute(&mut *tx)
            .await?;
    }
    let Some(board) = now_on else {
        return Ok(());
    };
    let limit = append
        .quota
        .as_ref()
        .filter(|quota| quota.board == board)
        .map_or(i64::MAX, |quota| quota.limit);
    let counted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO board_live_tasks (board, live) VALUES ($1, 1) \
         ON CONFLICT (board) DO UPDATE SET live = board_live_tasks.live + 1 \
         WHERE board_live_tasks.live < $2 RETURNING live",
    )
    .bind(board)
    .bind(limit)
    .fetch_optional(&mut *tx)
    .await?;
    if counted.is_some() {
        return Ok(());
    }
    let live: i64 = sqlx::query_scalar("SELECT live FROM board_live_tasks WHERE board = $1")
        .bind(board)
        .fetch_one(&mut *tx)
        .await?;
    Err(Error::Refused(Refusal::TaskQuotaExceeded {
        board: board.to_owned(),
        live,
        limit,
    }))
}

/// A task's head row: its snapshot (with the version it is of) and its current version.
#[derive(sqlx::FromRow)]
struct Head {
    snapshot: Option<Vec<u8>>,
    snapshot_version: i64,
    version: i64,
}
