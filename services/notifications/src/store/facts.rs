//! The read model of other services' data, as far as the rules need it: users' addresses and
//! names (identity), projects' titles (projects), and tasks' creators, assignees, job owners, due
//! times and states (tasks). Written only by the consumers of those services' events.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::rules::{Person, TaskFacts};
use crate::store::inbox::{project_id, user_id};

/// A task as stored, with the version of the last event applied.
#[derive(Debug, Clone)]
pub struct StoredTask {
    /// What the rules need.
    pub facts: TaskFacts,
    /// The version of the last applied event.
    pub version: i64,
    /// Its due time.
    pub due_time: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    task: String,
    project_id: String,
    title: String,
    creator: String,
    assignee: String,
    job_owner: String,
    due_time: Option<DateTime<Utc>>,
    version: i64,
}

/// Records a user's address and name (and when their first agenda is due, if new).
pub async fn save_user(
    conn: &mut PgConnection,
    user: &str,
    email: &str,
    display_name: &str,
    first_agenda: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (user_id, email, display_name, next_agenda_time) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id) DO UPDATE SET \
           email = CASE WHEN EXCLUDED.email = '' THEN users.email ELSE EXCLUDED.email END, \
           display_name = EXCLUDED.display_name",
    )
    .bind(user_id(user))
    .bind(email)
    .bind(display_name)
    .bind(first_agenda)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets a user's address (their registration was undone): nothing is mailed to it.
pub async fn forget_address(conn: &mut PgConnection, user: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET email = '' WHERE user_id = $1")
        .bind(user_id(user))
        .execute(conn)
        .await?;
    Ok(())
}

/// `users/{user}` with their display name (the id when unknown).
pub async fn person(conn: &mut PgConnection, user: &str) -> Result<Person, sqlx::Error> {
    if user.is_empty() {
        return Ok(Person {
            name: String::new(),
            display_name: "Someone".to_owned(),
        });
    }
    let name: Option<String> =
        sqlx::query_scalar("SELECT display_name FROM users WHERE user_id = $1")
            .bind(user_id(user))
            .fetch_optional(conn)
            .await?;
    let id = user_id(user);
    Ok(Person {
        name: format!("users/{id}"),
        display_name: name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| id.to_owned()),
    })
}

/// Records a project's title.
pub async fn save_project(
    conn: &mut PgConnection,
    project: &str,
    title: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projects (project_id, title) VALUES ($1, $2) \
         ON CONFLICT (project_id) DO UPDATE SET title = EXCLUDED.title",
    )
    .bind(project_id(project))
    .bind(title)
    .execute(conn)
    .await?;
    Ok(())
}

/// A project's title (its name when unknown).
pub async fn project_title(conn: &mut PgConnection, project: &str) -> Result<String, sqlx::Error> {
    let title: Option<String> =
        sqlx::query_scalar("SELECT title FROM projects WHERE project_id = $1")
            .bind(project_id(project))
            .fetch_optional(conn)
            .await?;
    Ok(title
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| project.to_owned()))
}

/// A task as known, locked for the rest of the transaction.
pub async fn task(conn: &mut PgConnection, task: &str) -> Result<Option<StoredTask>, sqlx::Error> {
    let row: Option<TaskRow> = sqlx::query_as(
        "SELECT task, project_id, title, creator, assignee, job_owner, due_time, version \
         FROM tasks WHERE task = $1 FOR UPDATE",
    )
    .bind(task)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| StoredTask {
        facts: TaskFacts {
            task: r.task,
            project: format!("projects/{}", r.project_id),
            title: r.title,
            creator: r.creator,
            assignee: r.assignee,
            job_owner: r.job_owner,
        },
        version: r.version,
        due_time: r.due_time,
    }))
}

/// What an event changes of a task.
#[derive(Debug, Clone, Default)]
pub struct TaskChanges {
    /// New title.
    pub title: Option<String>,
    /// New assignee (empty: unassigned).
    pub assignee: Option<String>,
    /// New job owner.
    pub job_owner: Option<String>,
    /// New due time (`Some(None)`: cleared).
    pub due_time: Option<Option<DateTime<Utc>>>,
    /// Done or not.
    pub done: Option<bool>,
    /// Deleted or not.
    pub deleted: Option<bool>,
}

/// Records a new task; false when it was known already.
pub async fn create_task(
    conn: &mut PgConnection,
    facts: &TaskFacts,
    due_time: Option<DateTime<Utc>>,
    done: bool,
    version: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO tasks (task, project_id, title, creator, assignee, job_owner, due_time, done, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (task) DO NOTHING",
    )
    .bind(&facts.task)
    .bind(project_id(&facts.project))
    .bind(&facts.title)
    .bind(&facts.creator)
    .bind(&facts.assignee)
    .bind(&facts.job_owner)
    .bind(due_time)
    .bind(done)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Applies `changes` and the event's `version` to a known task.
pub async fn change_task(
    conn: &mut PgConnection,
    task: &str,
    changes: &TaskChanges,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tasks SET title = coalesce($2, title), assignee = coalesce($3, assignee), \
           job_owner = coalesce($4, job_owner), \
           due_time = CASE WHEN $5 THEN $6 ELSE due_time END, \
           done = coalesce($7, done), deleted = coalesce($8, deleted), version = $9 \
         WHERE task = $1",
    )
    .bind(task)
    .bind(changes.title.as_deref())
    .bind(changes.assignee.as_deref())
    .bind(changes.job_owner.as_deref())
    .bind(changes.due_time.is_some())
    .bind(changes.due_time.flatten())
    .bind(changes.done)
    .bind(changes.deleted)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(())
}

/// A task on a user's agenda.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenTask {
    /// `projects/{project}/tasks/{task}`.
    pub task: String,
    /// Title.
    pub title: String,
    /// Due time.
    pub due_time: DateTime<Utc>,
}

/// The open tasks of `user` due before `until`, earliest first (at most 100).
pub async fn due_before(
    conn: &mut PgConnection,
    user: &str,
    until: DateTime<Utc>,
) -> Result<Vec<OpenTask>, sqlx::Error> {
    sqlx::query_as(
        "SELECT task, title, due_time FROM tasks \
         WHERE assignee = $1 AND NOT done AND NOT deleted AND due_time < $2 \
         ORDER BY due_time, task LIMIT 100",
    )
    .bind(format!("users/{}", user_id(user)))
    .bind(until)
    .fetch_all(conn)
    .await
}
