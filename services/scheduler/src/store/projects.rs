//! Changes the projects service's events make to schedules (see `crate::events`): pausing the
//! schedules an event takes the ground from under, and following a column's kind.

use taskmesh_contracts::scheduler_v1::State;

use super::{Store, state_number};
use crate::error::Error;

/// The schedules an event of the projects service concerns, and what it does to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Affected {
    /// Pause the active schedules of `project` owned by `owner` (`users/{user}`).
    OwnedBy {
        /// Project id.
        project: String,
        /// The owner.
        owner: String,
        /// Why.
        reason: String,
    },
    /// Pause every active schedule of `project`.
    Project {
        /// Project id.
        project: String,
        /// Why.
        reason: String,
    },
    /// Pause the active schedules whose template column is `column`.
    Column {
        /// `projects/{p}/boards/{b}/columns/{c}`.
        column: String,
        /// Why.
        reason: String,
    },
    /// Pause the active schedules whose template column starts with `prefix` (a board's).
    ColumnsUnder {
        /// `projects/{p}/boards/{b}/columns/`.
        prefix: String,
        /// Why.
        reason: String,
    },
    /// Templates in `column` create tasks with `status` from now on.
    ColumnKind {
        /// The column.
        column: String,
        /// `taskmesh.tasks.v1.Status` number.
        status: i32,
    },
}

const PAUSE: &str = "UPDATE schedules SET state = $1, pause_reason = $2, update_time = now(), \
                     version = version + 1 WHERE state = $3 AND ";

impl Store {
    /// Applies `affected`; returns how many schedules changed.
    pub async fn apply_project_change(&self, affected: &Affected) -> Result<u64, Error> {
        let paused = state_number(State::Paused);
        let active = state_number(State::Active);
        let done = match affected {
            Affected::OwnedBy {
                project,
                owner,
                reason,
            } => {
                sqlx::query(&format!("{PAUSE}project = $4 AND owner = $5"))
                    .bind(paused)
                    .bind(reason)
                    .bind(active)
                    .bind(project)
                    .bind(owner)
                    .execute(&self.pool)
                    .await?
            }
            Affected::Project { project, reason } => {
                sqlx::query(&format!("{PAUSE}project = $4"))
                    .bind(paused)
                    .bind(reason)
                    .bind(active)
                    .bind(project)
                    .execute(&self.pool)
                    .await?
            }
            Affected::Column { column, reason } => {
                sqlx::query(&format!("{PAUSE}template_column = $4"))
                    .bind(paused)
                    .bind(reason)
                    .bind(active)
                    .bind(column)
                    .execute(&self.pool)
                    .await?
            }
            Affected::ColumnsUnder { prefix, reason } => {
                // `starts_with` rather than LIKE: ids hold no wildcards, but a prefix is a prefix.
                sqlx::query(&format!("{PAUSE}starts_with(template_column, $4)"))
                    .bind(paused)
                    .bind(reason)
                    .bind(active)
                    .bind(prefix)
                    .execute(&self.pool)
                    .await?
            }
            Affected::ColumnKind { column, status } => {
                sqlx::query(
                    "UPDATE schedules SET task_status = $2 WHERE template_column = $1 \
                     AND task_status <> $2",
                )
                .bind(column)
                .bind(i16::try_from(*status).unwrap_or(0))
                .execute(&self.pool)
                .await?
            }
        };
        Ok(done.rows_affected())
    }
}
