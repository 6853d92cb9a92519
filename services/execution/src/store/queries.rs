//! Reads and user-driven changes of executions: get, list, watch versions, cancel, retry.

use sqlx::{Postgres, QueryBuilder};
use taskmesh_contracts::execution_v1::{Execution, ExecutionState};
use taskmesh_mesh::aip::{self, Page};

use super::{COLUMNS, EventKind, Row, Store};
use crate::error::{Error, Reason};

impl Store {
    /// One execution by name.
    pub async fn get(&self, name: &str) -> Result<Execution, Error> {
        let mut conn = self.pool().acquire().await?;
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM executions WHERE name = $1"))
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?;
        let row = row.ok_or_else(|| Error::NotFound(name.to_owned()))?;
        Ok(self.to_proto(&mut conn, &row).await?)
    }

    /// The executions of a task, newest first.
    pub async fn list(
        &self,
        task: &str,
        page: Page,
        fingerprint: &str,
    ) -> Result<(Vec<Execution>, String), Error> {
        let mut conn = self.pool().acquire().await?;
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT {COLUMNS} FROM executions WHERE task = "
        ));
        query.push_bind(task.to_owned());
        page.push_sql(&mut query, "create_time DESC, id");
        let rows: Vec<Row> = query.build_query_as().fetch_all(&mut *conn).await?;
        let (rows, token) = aip::split_page(rows, page, fingerprint);
        let executions = self.to_protos(&mut conn, &rows).await?;
        Ok((executions, token))
    }

    /// The change counter of an execution, for watching.
    pub async fn version(&self, name: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT version FROM executions WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await
    }

    /// Cancels: a pending execution at once, a running one through its worker's next heartbeat.
    pub async fn cancel(&self, name: &str) -> Result<Execution, Error> {
        let mut tx = self.pool().begin().await?;
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE executions SET cancel_requested = true, \
             state = CASE WHEN state = $2 THEN $3 ELSE state END, \
             end_time = CASE WHEN state = $2 THEN now() ELSE end_time END, \
             error = CASE WHEN state = $2 THEN 'cancelled' ELSE error END, \
             update_time = now(), version = version + 1 \
             WHERE name = $1 AND state IN ($2, $4) RETURNING {COLUMNS}"
        ))
        .bind(name)
        .bind(ExecutionState::Pending as i16)
        .bind(ExecutionState::Cancelled as i16)
        .bind(ExecutionState::Running as i16)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            drop(tx);
            let current = self.get(name).await?;
            return Err(Error::Refused {
                reason: Reason::ExecutionFinal,
                message: format!("{name} is already final"),
                state: current.state().as_str_name().to_owned(),
            });
        };
        let execution = if row.state() == ExecutionState::Cancelled {
            self.emit(&mut tx, &row, EventKind::Failed).await?
        } else {
            self.to_proto(&mut tx, &row).await?
        };
        tx.commit().await?;
        self.outbox().wake();
        Ok(execution)
    }

    /// Starts a new round of attempts for a failed or cancelled execution.
    pub async fn retry(&self, name: &str) -> Result<Execution, Error> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE executions SET state = $2, budget_start = attempts_made, cancel_requested = false, \
             error = '', end_time = NULL, next_attempt_at = now(), progress_percent = 0, \
             progress_message = 'queued again', update_time = now(), version = version + 1 \
             WHERE name = $1 AND state IN ($3, $4) RETURNING {COLUMNS}"
        ))
        .bind(name)
        .bind(ExecutionState::Pending as i16)
        .bind(ExecutionState::Failed as i16)
        .bind(ExecutionState::Cancelled as i16)
        .fetch_optional(self.pool())
        .await
        ?;
        match row {
            Some(row) => {
                let mut conn = self.pool().acquire().await?;
                Ok(self.to_proto(&mut conn, &row).await?)
            }
            None => {
                let current = self.get(name).await?;
                Err(Error::Refused {
                    reason: Reason::ExecutionNotFailed,
                    message: format!(
                        "{name} has not failed; only failed or cancelled executions can be retried"
                    ),
                    state: current.state().as_str_name().to_owned(),
                })
            }
        }
    }
}
