//! Lists of notes: a user's own with those shared with them, or a project's; pinned first, then
//! in the order asked, filtered with the platform's grammar, paged by position.

use sqlx::{Postgres, QueryBuilder};
use taskmesh_mesh::aip::Filter;

use super::{COLUMNS, NoteRow, Store, StoreError, user_id};

/// The orders a list may ask for, as SQL (after `pinned DESC`).
pub fn order_sql(order_by: &str) -> Option<&'static str> {
    match order_by.trim() {
        "" | "update_time desc" => Some("n.update_time DESC, n.note_id DESC"),
        "update_time" | "update_time asc" => Some("n.update_time, n.note_id"),
        "create_time desc" => Some("n.create_time DESC, n.note_id DESC"),
        "create_time" | "create_time asc" => Some("n.create_time, n.note_id"),
        "title" | "title asc" => Some("lower(n.title), n.note_id"),
        _ => None,
    }
}

/// What to list.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    /// `users/{user}` (the caller's own and shared with them) or `projects/{project}`.
    pub parent: &'a str,
    /// Narrowing; without `archived` in it, archived notes are left out.
    pub filter: Option<&'a Filter>,
    /// Whether the filter names `archived`.
    pub filter_names_archived: bool,
    /// Deleted notes too.
    pub show_deleted: bool,
    /// From [`order_sql`].
    pub order: &'static str,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

impl Store {
    /// One page of `listing`.
    pub async fn list(&self, listing: Listing<'_>) -> Result<Vec<NoteRow>, StoreError> {
        let mut sql =
            QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM notes n WHERE ("));
        if let Some(project) = listing.parent.strip_prefix("projects/") {
            sql.push("n.project_id = ");
            sql.push_bind(project.to_owned());
        } else {
            sql.push("n.parent = ");
            sql.push_bind(listing.parent.to_owned());
            sql.push(
                " OR EXISTS (SELECT 1 FROM note_shares s WHERE s.note_id = n.note_id AND s.user_id = ",
            );
            sql.push_bind(user_id(listing.parent).to_owned());
            sql.push(")");
        }
        sql.push(")");
        if !listing.show_deleted {
            sql.push(" AND n.delete_time IS NULL");
        }
        if !listing.filter_names_archived {
            sql.push(" AND NOT n.archived");
        }
        if let Some(filter) = listing.filter {
            filter.push_and(&mut sql);
        }
        sql.push(format!(" ORDER BY n.pinned DESC, {} LIMIT ", listing.order));
        sql.push_bind(listing.limit);
        sql.push(" OFFSET ");
        sql.push_bind(listing.offset);
        Ok(sql.build_query_as().fetch_all(&self.pool).await?)
    }
}

impl Store {
    /// One page of the notes linking to `target` that `caller` can read, newest change first.
    pub async fn linked(
        &self,
        caller: &str,
        target: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<NoteRow>, StoreError> {
        let user = user_id(caller);
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notes n \
             WHERE n.delete_time IS NULL \
               AND EXISTS (SELECT 1 FROM note_links l WHERE l.note_id = n.note_id AND l.target = $1) \
               AND (n.parent = $2 \
                 OR EXISTS (SELECT 1 FROM note_shares s WHERE s.note_id = n.note_id AND s.user_id = $3) \
                 OR (n.project_id <> '' AND EXISTS (SELECT 1 FROM members m \
                       WHERE m.role > 0 AND m.project_id = n.project_id AND m.user_id = $3))) \
             ORDER BY n.update_time DESC, n.note_id DESC LIMIT $4 OFFSET $5"
        ))
        .bind(target)
        .bind(caller)
        .bind(user)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?)
    }
}
