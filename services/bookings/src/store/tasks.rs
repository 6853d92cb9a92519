//! The tasks read model behind the calendar feed: each task's title, assignee, due time and
//! whether it is done or deleted, changed only by an event newer than the one the row came from.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};

/// What one task event changes (`None`: left as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskChange {
    /// Title.
    pub title: Option<String>,
    /// `users/{user}` or empty.
    pub assignee: Option<String>,
    /// The due time (`Some(None)`: removed).
    pub due_time: Option<Option<DateTime<Utc>>>,
    /// Done or not.
    pub done: Option<bool>,
    /// Deleted or not.
    pub deleted: Option<bool>,
}

/// A task as the feed shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserTask {
    /// `projects/{project}/tasks/{task}`.
    pub task: String,
    /// Title.
    pub title: String,
    /// Due.
    pub due_time: DateTime<Utc>,
    /// Done.
    pub done: bool,
    /// The task's version.
    pub version: i64,
}

impl Store {
    /// Applies `change` of `task` at its `version`, unless the row is at that version or newer.
    pub async fn apply_task(
        &self,
        task: &str,
        version: i64,
        change: &TaskChange,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_tasks AS t (task, title, assignee, due_time, done, deleted, version) \
             VALUES ($1, coalesce($2, ''), coalesce($3, ''), $4, coalesce($6, false), \
               coalesce($7, false), $8) \
             ON CONFLICT (task) DO UPDATE SET title = coalesce($2, t.title), \
               assignee = coalesce($3, t.assignee), \
               due_time = CASE WHEN $5 THEN $4 ELSE t.due_time END, \
               done = coalesce($6, t.done), deleted = coalesce($7, t.deleted), version = $8 \
             WHERE t.version < $8",
        )
        .bind(task)
        .bind(change.title.as_deref())
        .bind(change.assignee.as_deref())
        .bind(change.due_time.flatten())
        .bind(change.due_time.is_some())
        .bind(change.done)
        .bind(change.deleted)
        .bind(version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live tasks with a due time assigned to `user` (`users/{user}`), latest due first, at
    /// most `limit`.
    pub async fn tasks_of_user(&self, user: &str, limit: i64) -> Result<Vec<UserTask>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT task, title, due_time, done, version FROM user_tasks \
             WHERE assignee = $1 AND due_time IS NOT NULL AND NOT deleted \
             ORDER BY due_time DESC LIMIT $2",
        )
        .bind(user)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
