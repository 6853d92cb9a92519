//! Boards: create (with the default columns), read, list, update, soft delete and undelete.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use taskmesh_contracts::projects_v1::{
    Board, BoardCreated, BoardDeleted, BoardUndeleted, BoardUpdated,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip::{self, FieldKind, FilterField, OrderField};
use uuid::Uuid;

use super::projects::require_live_project;
use super::{
    NameChanges, Read, Store, claim_request_id, conflict, fingerprint, not_found, precondition,
    restorable, timestamp, writable,
};
use crate::domain::rules::{DEFAULT_COLUMNS, etag};
use crate::domain::{BoardName, ProjectName};
use crate::error::{Error, Reason};

const COLUMNS: &str = "uid, project_id, id, display_name, description, create_time, update_time, \
                       delete_time, version";

/// Fields ListBoards can filter on.
pub const FILTER_FIELDS: &[FilterField] = &[
    FilterField {
        name: "display_name",
        sql: "display_name",
        kind: FieldKind::Text,
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
];

/// Fields ListBoards can order by.
pub const ORDER_FIELDS: &[OrderField] = &[
    OrderField {
        name: "display_name",
        sql: "lower(display_name)",
    },
    OrderField {
        name: "create_time",
        sql: "create_time",
    },
    OrderField {
        name: "update_time",
        sql: "update_time",
    },
];

#[derive(sqlx::FromRow)]
struct Row {
    uid: Uuid,
    project_id: String,
    id: String,
    display_name: String,
    description: String,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    delete_time: Option<DateTime<Utc>>,
    version: i64,
}

impl super::Versioned for Row {
    fn version(&self) -> i64 {
        self.version
    }
    fn deleted(&self) -> bool {
        self.delete_time.is_some()
    }
}

impl Row {
    fn into_proto(self) -> Board {
        Board {
            name: format!("projects/{}/boards/{}", self.project_id, self.id),
            display_name: self.display_name,
            description: self.description,
            create_time: Some(timestamp(self.create_time)),
            update_time: Some(timestamp(self.update_time)),
            delete_time: self.delete_time.map(timestamp),
            etag: etag(self.version),
            uid: self.uid.to_string(),
        }
    }
}

/// A validated new board.
#[derive(Debug)]
pub struct NewBoard {
    /// Parent project.
    pub parent: ProjectName,
    /// Board id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Idempotency key.
    pub request_id: Option<Uuid>,
}

async fn load(conn: &mut PgConnection, name: &BoardName, read: Read) -> Result<Option<Row>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM boards WHERE project_id = $1 AND id = $2{}",
        read.clause()
    );
    Ok(sqlx::query_as(&sql)
        .bind(&name.project)
        .bind(&name.board)
        .fetch_optional(conn)
        .await?)
}

/// Checks that a board and its project are live and locks the board, so that column writes (and
/// the column limit) serialize per board.
pub(crate) async fn require_live_board(
    conn: &mut PgConnection,
    name: &BoardName,
) -> Result<(), Error> {
    let resource = name.to_string();
    match load(conn, name, Read::ForUpdate).await? {
        None => Err(not_found(&resource)),
        Some(row) if row.delete_time.is_some() => Err(precondition(
            format!("{resource} is deleted"),
            Reason::ParentDeleted,
            &[("resource", resource.clone())],
        )),
        Some(_) => Ok(()),
    }
}

impl Store {
    /// Creates a board with the default columns (idempotent on `request_id`).
    pub async fn create_board(&self, context: &CallContext, new: NewBoard) -> Result<Board, Error> {
        let name = BoardName {
            project: new.parent.project.clone(),
            board: new.id.clone(),
        };
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        if let Some(existing) = claim_request_id(
            &mut tx,
            "CreateBoard",
            &context.caller,
            new.request_id,
            &resource,
        )
        .await?
        {
            drop(tx);
            return self.get_board(&BoardName::parse("name", &existing)?).await;
        }
        require_live_project(&mut tx, &new.parent.project).await?;
        let live: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM boards WHERE project_id = $1 AND delete_time IS NULL",
        )
        .bind(&new.parent.project)
        .fetch_one(&mut *tx)
        .await?;
        let limit = self.limits().max_boards_per_project;
        if live >= limit {
            return Err(precondition(
                format!(
                    "{} already has {live} boards, the limit is {limit}",
                    new.parent
                ),
                Reason::BoardLimitReached,
                &[("limit", limit.to_string())],
            ));
        }
        let now = Utc::now();
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO boards (uid, project_id, id, display_name, description, create_time, \
             update_time) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(&name.project)
        .bind(&name.board)
        .bind(&new.display_name)
        .bind(&new.description)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, &resource, "board"))?;
        let mut columns = Vec::with_capacity(DEFAULT_COLUMNS.len());
        for (position, (display_name, kind)) in DEFAULT_COLUMNS.iter().enumerate() {
            let column = self
                .insert_column(
                    &mut tx,
                    &name,
                    &aip::new_id(),
                    display_name,
                    *kind,
                    i32::try_from(position).unwrap_or(0),
                    now,
                )
                .await?;
            columns.push(column);
        }
        let board = row.into_proto();
        let event = BoardCreated {
            board: Some(board.clone()),
            columns,
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(board)
    }

    /// Gets a board, soft-deleted or not.
    pub async fn get_board(&self, name: &BoardName) -> Result<Board, Error> {
        let mut conn = self.pool().acquire().await?;
        load(&mut conn, name, Read::Plain)
            .await?
            .map(Row::into_proto)
            .ok_or_else(|| not_found(&name.to_string()))
    }

    /// Lists the boards of a project.
    pub async fn list_boards(
        &self,
        parent: &ProjectName,
        filter: &str,
        order_by: &str,
        show_deleted: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Board>, String), Error> {
        let parsed = aip::parse_filter(filter, FILTER_FIELDS)?;
        let order = aip::order_by(order_by, ORDER_FIELDS, "create_time", "uid")?;
        let parent_text = parent.to_string();
        let fp = fingerprint(&[&parent_text, filter, order_by, &show_deleted.to_string()]);
        let page = aip::page(page_size, page_token, &fp)?;
        self.get_project(parent).await?;
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT {COLUMNS} FROM boards WHERE project_id = "
        ));
        query.push_bind(parent.project.clone());
        if !show_deleted {
            query.push(" AND delete_time IS NULL");
        }
        parsed.push_and(&mut query);
        page.push_sql(&mut query, &order);
        let rows: Vec<Row> = query.build_query_as().fetch_all(self.pool()).await?;
        let (rows, token) = aip::split_page(rows, page, &fp);
        Ok((rows.into_iter().map(Row::into_proto).collect(), token))
    }

    /// Updates display name and/or description.
    pub async fn update_board(
        &self,
        context: &CallContext,
        name: &BoardName,
        given_etag: &str,
        changes: NameChanges,
        mask: Vec<&'static str>,
    ) -> Result<Board, Error> {
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        let row = writable(
            load(&mut tx, name, Read::ForUpdate).await?,
            &resource,
            given_etag,
        )?;
        let updated: Row = sqlx::query_as(&format!(
            "UPDATE boards SET display_name = $3, description = $4, update_time = now(), \
             version = version + 1 WHERE project_id = $1 AND id = $2 RETURNING {COLUMNS}"
        ))
        .bind(&name.project)
        .bind(&name.board)
        .bind(changes.display_name.unwrap_or(row.display_name))
        .bind(changes.description.unwrap_or(row.description))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, &resource, "board"))?;
        let board = updated.into_proto();
        let event = BoardUpdated {
            board: Some(board.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: mask.iter().map(|p| (*p).to_owned()).collect(),
            }),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(board)
    }

    /// Soft-deletes a live board (DeleteBoard).
    pub async fn delete_board(
        &self,
        context: &CallContext,
        name: &BoardName,
        given_etag: &str,
    ) -> Result<Board, Error> {
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        writable(
            load(&mut tx, name, Read::ForUpdate).await?,
            &resource,
            given_etag,
        )?;
        let board = set_delete_time(&mut tx, name, "now()").await?;
        let event = BoardDeleted {
            board: Some(board.clone()),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(board)
    }

    /// Restores a soft-deleted board of a live project (UndeleteBoard).
    pub async fn undelete_board(
        &self,
        context: &CallContext,
        name: &BoardName,
        given_etag: &str,
    ) -> Result<Board, Error> {
        let resource = name.to_string();
        let mut tx = self.begin().await?;
        restorable(
            load(&mut tx, name, Read::ForUpdate).await?,
            &resource,
            given_etag,
        )?;
        require_live_project(&mut tx, &name.project).await?;
        let board = set_delete_time(&mut tx, name, "NULL").await?;
        let event = BoardUndeleted {
            board: Some(board.clone()),
        };
        self.emit(&mut tx, context, &resource, &event).await?;
        self.commit(tx).await?;
        Ok(board)
    }
}

/// Sets a board's `delete_time` to `value` (`now()` or `NULL`) and bumps its version.
async fn set_delete_time(
    conn: &mut PgConnection,
    name: &BoardName,
    value: &'static str,
) -> Result<Board, Error> {
    let resource = name.to_string();
    let changed: Row = sqlx::query_as(&format!(
        "UPDATE boards SET delete_time = {value}, update_time = now(), version = version + 1 \
         WHERE project_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(&name.project)
    .bind(&name.board)
    .fetch_one(conn)
    .await
    .map_err(|e| conflict(e, &resource, "board"))?;
    Ok(changed.into_proto())
}
