//! Columns: ordered per board, with a kind. Positions stay dense (0..n) through create, move and
//! delete; all column writes of a board serialize on the board's row lock.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use taskmesh_contracts::projects_v1::{
    Column, ColumnCreated, ColumnDeleted, ColumnKind, ColumnMoved, ColumnUpdated,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip::{self, FieldKind, FilterField, OrderField};
use uuid::Uuid;

use super::boards::require_live_board;
use super::{
    Read, Store, claim_request_id, conflict, fingerprint, not_found, precondition, timestamp,
    writable,
};
use crate::domain::rules::{clamp_position, etag};
use crate::domain::{BoardName, ColumnName};
use crate::error::{Error, Reason};

const COLUMNS: &str = "uid, project_id, board_id, id, display_name, kind, position, create_time, \
                       update_time, version";

/// Column kinds by name, for filters.
pub const KIND_NAMES: &[(&str, i32)] = &[
    ("COLUMN_KIND_BACKLOG", ColumnKind::Backlog as i32),
    ("COLUMN_KIND_TODO", ColumnKind::Todo as i32),
    ("COLUMN_KIND_DOING", ColumnKind::Doing as i32),
    ("COLUMN_KIND_DONE", ColumnKind::Done as i32),
    ("COLUMN_KIND_CUSTOM", ColumnKind::Custom as i32),
];

/// Fields ListColumns can filter on.
pub const FILTER_FIELDS: &[FilterField] = &[
    FilterField {
        name: "display_name",
        sql: "display_name",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "kind",
        sql: "kind",
        kind: FieldKind::Enum(KIND_NAMES),
    },
];

/// Fields ListColumns can order by.
pub const ORDER_FIELDS: &[OrderField] = &[
    OrderField {
        name: "position",
        sql: "position",
    },
    OrderField {
        name: "display_name",
        sql: "lower(display_name)",
    },
];

#[derive(sqlx::FromRow)]
struct Row {
    uid: Uuid,
    project_id: String,
    board_id: String,
    id: String,
    display_name: String,
    kind: i16,
    position: i32,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    version: i64,
}

impl super::Versioned for Row {
    fn version(&self) -> i64 {
        self.version
    }
}

impl Row {
    fn into_proto(self) -> Column {
        Column {
            name: format!(
                "projects/{}/boards/{}/columns/{}",
                self.project_id, self.board_id, self.id
            ),
            display_name: self.display_name,
            kind: i32::from(self.kind),
            position: self.position,
            create_time: Some(timestamp(self.create_time)),
            update_time: Some(timestamp(self.update_time)),
            etag: etag(self.version),
            uid: self.uid.to_string(),
        }
    }
}

/// A validated new column.
#[derive(Debug)]
pub struct NewColumn {
    /// Parent board.
    pub parent: BoardName,
    /// Column id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Kind.
    pub kind: ColumnKind,
    /// Idempotency key.
    pub request_id: Option<Uuid>,
}

/// Changes to apply; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ColumnChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New kind.
    pub kind: Option<ColumnKind>,
}

async fn load(
    conn: &mut PgConnection,
    name: &ColumnName,
    read: Read,
) -> Result<Option<Row>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM columns WHERE project_id = $1 AND board_id = $2 AND id = $3{}",
        read.clause()
    );
    Ok(sqlx::query_as(&sql)
        .bind(&name.project)
        .bind(&name.board)
        .bind(&name.column)
        .fetch_optional(conn)
        .await?)
}

async fn count(conn: &mut PgConnection, board: &BoardName) -> Result<i64, Error> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM columns WHERE project_id = $1 AND board_id = $2")
            .bind(&board.project)
            .bind(&board.board)
            .fetch_one(conn)
            .await?,
    )
}

impl Store {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn insert_column(
        &self,
        conn: &mut PgConnection,
        board: &BoardName,
        id: &str,
        display_name: &str,
        kind: ColumnKind,
        position: i32,
        now: DateTime<Utc>,
    ) -> Result<Column, Error> {
        let resource = format!("{board}/columns/{id}");
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO columns (uid, project_id, board_id, id, display_name, kind, position, \
             create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
             RETURNING {COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(&board.project)
        .bind(&board.board)
        .bind(id)
        .bind(display_name)
        .bind(kind as i16)
        .bind(position)
        .bind(now)
        .fetch_one(conn)
        .await
        .map_err(|e| conflict(e, &resource, "column"))?;
        Ok(row.into_proto())
    }

    /// Adds a column at the end of its board, within the column limit.
    pub async fn create_column(
        &self,
        context: &CallContext,
        new: NewColumn,
    ) -> Result<Column, Error> {
        let resource = format!("{}/columns/{}", new.parent, new.id);
        let mut tx = self.begin().await?;
        if let Some(existing) = claim_request_id(
            &mut tx,
            "CreateColumn",
            &context.caller,
            new.request_id,
            &resource,
        )
        .await?
        {
            drop(tx);
            return self
                .get_column(&ColumnName::parse("name", &existing)?)
                .await;
        }
        require_live_board(&mut tx, &new.parent).await?;
        let columns = count(&mut tx, &new.parent).await?;
        let limit = self.limits().max_columns_per_board;
        if columns >= limit {
            return Err(precondition(
                format!(
                    "{} already has {columns} columns, the limit is {limit}",
                    new.parent
                ),
                Reason::ColumnLimitReached,
                &[("limit", limit.to_string())],
            ));
        }
        let column = self
            .insert_column(
                &mut tx,
                &new.parent,
                &new.id,
                &new.display_name,
                new.kind,
                i32::try_from(columns).unwrap_or(i32::MAX),
                Utc::now(),
            )
            .await?;
        let event = ColumnCreated {
            column: Some(column.clone()),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(column)
    }

    /// Gets a column.
    pub async fn get_column(&self, name: &ColumnName) -> Result<Column, Error> {
        let mut conn = self.pool().acquire().await?;
        load(&mut conn, name, Read::Plain)
            .await?
            .map(Row::into_proto)
            .ok_or_else(|| not_found(&name.to_string()))
    }

    /// Lists the columns of a board, by position unless asked otherwise.
    pub async fn list_columns(
        &self,
        parent: &BoardName,
        filter: &str,
        order_by: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Column>, String), Error> {
        let parsed = aip::parse_filter(filter, FILTER_FIELDS)?;
        let order = aip::order_by(order_by, ORDER_FIELDS, "position", "uid")?;
        let parent_text = parent.to_string();
        let fp = fingerprint(&[&parent_text, filter, order_by]);
        let page = aip::page(page_size, page_token, &fp)?;
        self.get_board(parent).await?;
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT {COLUMNS} FROM columns WHERE project_id = "
        ));
        query.push_bind(parent.project.clone());
        query.push(" AND board_id = ");
        query.push_bind(parent.board.clone());
        parsed.push_and(&mut query);
        page.push_sql(&mut query, &order);
        let rows: Vec<Row> = query.build_query_as().fetch_all(self.pool()).await?;
        let (rows, token) = aip::split_page(rows, page, &fp);
        Ok((rows.into_iter().map(Row::into_proto).collect(), token))
    }

    /// Updates display name and/or kind.
    pub async fn update_column(
        &self,
        context: &CallContext,
        name: &ColumnName,
        given_etag: &str,
        changes: ColumnChanges,
        mask: Vec<&'static str>,
    ) -> Result<Column, Error> {
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        require_live_board(&mut tx, &name.board()).await?;
        let row = writable(
            load(&mut tx, name, Read::ForUpdate).await?,
            &resource,
            given_etag,
        )?;
        let updated: Row = sqlx::query_as(&format!(
            "UPDATE columns SET display_name = $4, kind = $5, update_time = now(), \
             version = version + 1 WHERE project_id = $1 AND board_id = $2 AND id = $3 \
             RETURNING {COLUMNS}"
        ))
        .bind(&name.project)
        .bind(&name.board)
        .bind(&name.column)
        .bind(changes.display_name.unwrap_or(row.display_name))
        .bind(changes.kind.map_or(row.kind, |k| k as i16))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, &resource, "column"))?;
        let column = updated.into_proto();
        let event = ColumnUpdated {
            column: Some(column.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: mask.iter().map(|p| (*p).to_owned()).collect(),
            }),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(column)
    }

    /// Deletes a column; the columns after it move up one place.
    pub async fn delete_column(
        &self,
        context: &CallContext,
        name: &ColumnName,
        given_etag: &str,
    ) -> Result<(), Error> {
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        require_live_board(&mut tx, &name.board()).await?;
        let row = writable(
            load(&mut tx, name, Read::ForUpdate).await?,
            &resource,
            given_etag,
        )?;
        sqlx::query("DELETE FROM columns WHERE project_id = $1 AND board_id = $2 AND id = $3")
            .bind(&name.project)
            .bind(&name.board)
            .bind(&name.column)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE columns SET position = position - 1 \
             WHERE project_id = $1 AND board_id = $2 AND position > $3",
        )
        .bind(&name.project)
        .bind(&name.board)
        .bind(row.position)
        .execute(&mut *tx)
        .await?;
        let event = ColumnDeleted {
            column: Some(row.into_proto()),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await
    }

    /// Moves a column to `position` (clamped to the board); the others shift to keep order dense.
    pub async fn move_column(
        &self,
        context: &CallContext,
        name: &ColumnName,
        position: i32,
        given_etag: &str,
    ) -> Result<Column, Error> {
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        let board = name.board();
        require_live_board(&mut tx, &board).await?;
        let row = writable(
            load(&mut tx, name, Read::ForUpdate).await?,
            &resource,
            given_etag,
        )?;
        let total = i32::try_from(count(&mut tx, &board).await?).unwrap_or(i32::MAX);
        let target = clamp_position(position, total);
        let from = row.position;
        if target != from {
            // Shift the columns between the old and the new place by one towards the gap.
            let (low, high, delta) = if target < from {
                (target, from - 1, 1)
            } else {
                (from + 1, target, -1)
            };
            sqlx::query(
                "UPDATE columns SET position = position + $5 \
                 WHERE project_id = $1 AND board_id = $2 AND position BETWEEN $3 AND $4",
            )
            .bind(&name.project)
            .bind(&name.board)
            .bind(low)
            .bind(high)
            .bind(delta)
            .execute(&mut *tx)
            .await?;
        }
        let moved: Row = sqlx::query_as(&format!(
            "UPDATE columns SET position = $4, update_time = now(), version = version + 1 \
             WHERE project_id = $1 AND board_id = $2 AND id = $3 RETURNING {COLUMNS}"
        ))
        .bind(&name.project)
        .bind(&name.board)
        .bind(&name.column)
        .bind(target)
        .fetch_one(&mut *tx)
        .await?;
        let column = moved.into_proto();
        let event = ColumnMoved {
            column: Some(column.clone()),
            previous_position: from,
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(column)
    }
}
