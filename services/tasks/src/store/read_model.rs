//! The read model: `task_view` (one row per task, shaped for ListTasks) and `task_activity` (one row
//! per event). The projector applies events in version order per task and skips versions it has
//! already applied; a rebuild empties both tables and replays the event store.

use prost::Message;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use taskmesh_contracts::tasks_v1::{Activity, Priority, Status as TaskStatus, Task};
use taskmesh_mesh::aip::{self, FieldKind, FilterField, OrderField};
use uuid::Uuid;

use super::to_time;
use crate::domain::aggregate::apply_to_task;
use crate::domain::events::TaskEvent;
use crate::domain::names::TaskName;
use crate::error::Error;

/// Status names for filters.
pub const STATUS_NAMES: &[(&str, i32)] = &[
    ("STATUS_BACKLOG", TaskStatus::Backlog as i32),
    ("STATUS_TODO", TaskStatus::Todo as i32),
    ("STATUS_DOING", TaskStatus::Doing as i32),
    ("STATUS_DONE", TaskStatus::Done as i32),
    ("STATUS_CUSTOM", TaskStatus::Custom as i32),
];

/// Priority names for filters.
pub const PRIORITY_NAMES: &[(&str, i32)] = &[
    ("PRIORITY_UNSPECIFIED", Priority::Unspecified as i32),
    ("PRIORITY_LOW", Priority::Low as i32),
    ("PRIORITY_MEDIUM", Priority::Medium as i32),
    ("PRIORITY_HIGH", Priority::High as i32),
    ("PRIORITY_URGENT", Priority::Urgent as i32),
];

/// Fields ListTasks can filter on.
pub const FILTER_FIELDS: &[FilterField] = &[
    FilterField {
        name: "status",
        sql: "status",
        kind: FieldKind::Enum(STATUS_NAMES),
    },
    FilterField {
        name: "column",
        sql: "column_name",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "assignee",
        sql: "assignee",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "labels",
        sql: "labels",
        kind: FieldKind::TextArray,
    },
    FilterField {
        name: "priority",
        sql: "priority",
        kind: FieldKind::Enum(PRIORITY_NAMES),
    },
    FilterField {
        name: "title",
        sql: "title",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "due_time",
        sql: "due_time",
        kind: FieldKind::Timestamp,
    },
    FilterField {
        name: "create_time",
        sql: "create_time",
        kind: FieldKind::Timestamp,
    },
    FilterField {
        name: "update_time",
        sql: "update_time",
        kind: FieldKind::Timestamp,
    },
    FilterField {
        name: "complete_time",
        sql: "complete_time",
        kind: FieldKind::Timestamp,
    },
];

/// Fields ListTasks can order by.
pub const ORDER_FIELDS: &[OrderField] = &[
    OrderField {
        name: "create_time",
        sql: "create_time",
    },
    OrderField {
        name: "update_time",
        sql: "update_time",
    },
    OrderField {
        name: "due_time",
        sql: "due_time",
    },
    OrderField {
        name: "priority",
        sql: "priority",
    },
    OrderField {
        name: "title",
        sql: "lower(title)",
    },
    OrderField {
        name: "position",
        sql: "position",
    },
];

/// What applying one event did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// The event is now in the read model.
    Applied,
    /// Already applied before (a redelivery): nothing changed.
    Duplicate,
    /// Earlier versions were missing from the read model; they were applied from the event store
    /// before this one.
    Repaired {
        /// The first version taken from the event store.
        from: i64,
        /// The event's own version.
        to: i64,
    },
    /// An earlier version of the task is missing: apply that one first.
    Gap {
        /// The version the read model holds.
        have: i64,
    },
}

/// Applies `event` in the caller's transaction.
pub async fn apply(conn: &mut PgConnection, event: &TaskEvent) -> Result<Applied, sqlx::Error> {
    let Some(context) = event.context() else {
        return Ok(Applied::Duplicate);
    };
    let Some(task_id) = task_id_of(&context.task) else {
        return Ok(Applied::Duplicate);
    };
    let current: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, task FROM task_view WHERE task_id = $1 FOR UPDATE")
            .bind(task_id)
            .fetch_optional(&mut *conn)
            .await?;
    let (have, mut task) = match current {
        Some((version, bytes)) => (version, Task::decode(bytes.as_slice()).unwrap_or_default()),
        None => (0, Task::default()),
    };
    if context.version <= have {
        return Ok(Applied::Duplicate);
    }
    if context.version != have + 1 {
        return Ok(Applied::Gap { have });
    }
    apply_to_task(&mut task, event);
    let project = TaskName::parse("task", &task.name)
        .map(|n| n.project)
        .unwrap_or_default();
    sqlx::query(
        "INSERT INTO task_view (task_id, project_id, version, task, title, column_name, status, \
         priority, assignee, labels, due_time, position, create_time, update_time, complete_time, \
         delete_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (task_id) DO UPDATE SET version = EXCLUDED.version, task = EXCLUDED.task, \
         title = EXCLUDED.title, column_name = EXCLUDED.column_name, status = EXCLUDED.status, \
         priority = EXCLUDED.priority, assignee = EXCLUDED.assignee, labels = EXCLUDED.labels, \
         due_time = EXCLUDED.due_time, position = EXCLUDED.position, \
         update_time = EXCLUDED.update_time, complete_time = EXCLUDED.complete_time, \
         delete_time = EXCLUDED.delete_time",
    )
    .bind(task_id)
    .bind(project)
    .bind(context.version)
    .bind(task.encode_to_vec())
    .bind(&task.title)
    .bind(&task.column)
    .bind(i16::try_from(task.status).unwrap_or(0))
    .bind(i16::try_from(task.priority).unwrap_or(0))
    .bind(&task.assignee)
    .bind(&task.labels)
    .bind(to_time(task.due_time))
    .bind(task.position)
    .bind(to_time(task.create_time))
    .bind(to_time(task.update_time))
    .bind(to_time(task.complete_time))
    .bind(to_time(task.delete_time))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO task_activity (task_id, version, event_type, summary, actor, time) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(task_id)
    .bind(context.version)
    .bind(event.full_name())
    .bind(event.summary())
    .bind(&context.actor)
    .bind(to_time(context.time))
    .execute(&mut *conn)
    .await?;
    Ok(Applied::Applied)
}

/// [`apply`], and when the read model lacks earlier versions of the task (an event delivered out of
/// order or lost to the view), those are read from the event store, which holds every committed
/// version before its event is published, and applied first, in the caller's transaction. `Gap`
/// only if the event store itself lacks them.
pub async fn apply_or_repair(conn: &mut PgConnection, event: &TaskEvent) -> Result<Applied, Error> {
    let have = match apply(conn, event).await? {
        Applied::Gap { have } => have,
        done => return Ok(done),
    };
    // `apply` reports a gap only for an event with a context and a task id.
    let Some((context, task_id)) = event
        .context()
        .and_then(|c| task_id_of(&c.task).map(|id| (c, id)))
    else {
        return Ok(Applied::Gap { have });
    };
    let stored: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT event_type, payload FROM task_events WHERE task_id = $1 AND version > $2 \
         AND version <= $3 ORDER BY version",
    )
    .bind(task_id)
    .bind(have)
    .bind(context.version)
    .fetch_all(&mut *conn)
    .await?;
    let mut reached = have;
    for (event_type, payload) in stored {
        let earlier = TaskEvent::decode(&event_type, &payload).map_err(Error::CorruptEvent)?;
        if let Applied::Gap { have } = apply(conn, &earlier).await? {
            return Ok(Applied::Gap { have });
        }
        reached = earlier.version();
    }
    Ok(if reached == context.version {
        Applied::Repaired {
            from: have + 1,
            to: context.version,
        }
    } else {
        Applied::Gap { have: reached }
    })
}

fn task_id_of(name: &str) -> Option<Uuid> {
    TaskName::parse("task", name).ok().map(|n| n.task)
}

/// Empties the read model and replays every stored event, in one transaction that blocks the
/// projector meanwhile. Returns (events replayed, tasks).
pub async fn rebuild(pool: &PgPool) -> Result<(i64, i64), Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("LOCK TABLE task_view, task_activity IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    sqlx::query("TRUNCATE task_view, task_activity")
        .execute(&mut *tx)
        .await?;
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT event_type, payload FROM task_events ORDER BY task_id, version")
            .fetch_all(&mut *tx)
            .await?;
    let mut events = 0_i64;
    for (event_type, payload) in rows {
        let event = TaskEvent::decode(&event_type, &payload).map_err(Error::CorruptEvent)?;
        apply(&mut tx, &event).await?;
        events += 1;
    }
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM task_view")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((events, tasks))
}

/// A page of a project's tasks as ListTasks asks for it, parsed at the edge.
#[derive(Debug)]
pub struct TaskQuery<'a> {
    /// The project id.
    pub project: &'a str,
    /// The parsed filter.
    pub filter: aip::Filter,
    /// The ORDER BY clause.
    pub order: String,
    /// Whether soft-deleted tasks are listed too.
    pub show_deleted: bool,
    /// Which page.
    pub page: aip::Page,
    /// What the page token is bound to.
    pub fingerprint: String,
}

/// Lists the tasks of a project from the read model.
pub async fn list_tasks(pool: &PgPool, query: TaskQuery<'_>) -> Result<(Vec<Task>, String), Error> {
    let mut sql = QueryBuilder::<Postgres>::new("SELECT task FROM task_view WHERE project_id = ");
    sql.push_bind(query.project.to_owned());
    if !query.show_deleted {
        sql.push(" AND delete_time IS NULL");
    }
    query.filter.push_and(&mut sql);
    query.page.push_sql(&mut sql, &query.order);
    let rows: Vec<(Vec<u8>,)> = sql.build_query_as().fetch_all(pool).await?;
    let (rows, token) = aip::split_page(rows, query.page, &query.fingerprint);
    let tasks = rows
        .into_iter()
        .map(|(bytes,)| Task::decode(bytes.as_slice()).unwrap_or_default())
        .collect();
    Ok((tasks, token))
}

/// Lists a task's history, oldest first.
pub async fn list_activity(
    pool: &PgPool,
    task: &TaskName,
    page: aip::Page,
) -> Result<(Vec<Activity>, String), Error> {
    let fingerprint = task.to_string();
    let rows: Vec<(String, String, String, chrono::DateTime<chrono::Utc>, i64)> = sqlx::query_as(
        "SELECT event_type, summary, actor, time, version FROM task_activity WHERE task_id = $1 \
         ORDER BY version LIMIT $2 OFFSET $3",
    )
    .bind(task.task)
    .bind(page.size + 1)
    .bind(page.offset)
    .fetch_all(pool)
    .await?;
    let (rows, token) = aip::split_page(rows, page, &fingerprint);
    let activities = rows
        .into_iter()
        .map(|(event_type, summary, actor, time, version)| Activity {
            event_type,
            summary,
            actor,
            time: Some(taskmesh_mesh::time::to_timestamp(time)),
            version,
        })
        .collect();
    Ok((activities, token))
}
