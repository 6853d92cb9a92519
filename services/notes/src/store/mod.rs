//! The notes' storage in PostgreSQL: notes with their links and shares, the project members read
//! model, and who may do what with a note ([`Store::access`]). Full-text search is in [`search`].

pub mod attachments;
pub mod list;
pub mod search;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use taskmesh_mesh::aip::{FieldKind, FilterField};

/// What went wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// No such note.
    #[error("{0} not found")]
    NotFound(String),
    /// The etag sent is not the note's current one.
    #[error("{name} has changed (its etag is {current})")]
    EtagMismatch {
        /// The note.
        name: String,
        /// Its current etag.
        current: String,
    },
}

/// What a caller may do with a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Nothing: not even that it exists.
    None,
    /// Read it (a viewer's share, a project's viewer).
    Read,
    /// Change it (an editor's share, a project's member).
    Write,
    /// Also delete and share it (its owner, a project's admin).
    Own,
}

/// Fields the platform's filter grammar may name in lists and searches.
pub const FILTER_FIELDS: &[FilterField] = &[
    FilterField {
        name: "labels",
        sql: "n.labels",
        kind: FieldKind::TextArray,
    },
    FilterField {
        name: "pinned",
        sql: "n.pinned",
        kind: FieldKind::Bool,
    },
    FilterField {
        name: "archived",
        sql: "n.archived",
        kind: FieldKind::Bool,
    },
    FilterField {
        name: "project",
        sql: "('projects/' || n.project_id)",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "creator",
        sql: "n.creator",
        kind: FieldKind::Text,
    },
    FilterField {
        name: "create_time",
        sql: "n.create_time",
        kind: FieldKind::Timestamp,
    },
    FilterField {
        name: "update_time",
        sql: "n.update_time",
        kind: FieldKind::Timestamp,
    },
];

/// Project roles as the projects service numbers them (`taskmesh.projects.v1.Role`).
pub mod roles {
    /// May read.
    pub const VIEWER: i16 = 1;
    /// May change.
    pub const MEMBER: i16 = 2;
    /// May also delete and manage.
    pub const ADMIN: i16 = 3;
    /// Owns the project.
    pub const OWNER: i16 = 4;
}

/// A stored note.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoteRow {
    /// Its id.
    pub note_id: String,
    /// `users/{user}` or `projects/{project}`.
    pub parent: String,
    /// The project of a project note, '' for a personal one.
    pub project_id: String,
    /// Title.
    pub title: String,
    /// Markdown.
    pub body: String,
    /// `NoteColor` number.
    pub color: i16,
    /// Pinned.
    pub pinned: bool,
    /// Archived.
    pub archived: bool,
    /// Labels.
    pub labels: Vec<String>,
    /// `users/{user}`.
    pub creator: String,
    /// Written.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
    /// Deleted (softly).
    pub delete_time: Option<DateTime<Utc>>,
    /// Removed for good then.
    pub purge_time: Option<DateTime<Utc>>,
    /// Change counter.
    pub version: i64,
    /// How many files are attached.
    pub attachment_count: i64,
}

impl NoteRow {
    /// `{parent}/notes/{note}`.
    pub fn name(&self) -> String {
        format!("{}/notes/{}", self.parent, self.note_id)
    }

    /// The etag.
    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }
}

/// The columns of [`NoteRow`], for queries over `notes n`.
pub const COLUMNS: &str = "n.note_id, n.parent, n.project_id, n.title, n.body, n.color, n.pinned, \
    n.archived, n.labels, n.creator, n.create_time, n.update_time, n.delete_time, n.purge_time, \
    n.version, \
    (SELECT count(*) FROM attachments a WHERE a.note_id = n.note_id) AS attachment_count";

/// A note to create.
#[derive(Debug, Clone, Default)]
pub struct NewNote {
    /// `users/{user}` or `projects/{project}`.
    pub parent: String,
    /// Title.
    pub title: String,
    /// Markdown.
    pub body: String,
    /// `NoteColor` number.
    pub color: i16,
    /// Pinned.
    pub pinned: bool,
    /// Archived.
    pub archived: bool,
    /// Labels.
    pub labels: Vec<String>,
    /// Link targets, in order.
    pub links: Vec<String>,
}

/// What an update changes (`None`: left as it is).
#[derive(Debug, Clone, Default)]
pub struct NoteChange {
    /// Title.
    pub title: Option<String>,
    /// Markdown.
    pub body: Option<String>,
    /// `NoteColor` number.
    pub color: Option<i16>,
    /// Pinned.
    pub pinned: Option<bool>,
    /// Archived.
    pub archived: Option<bool>,
    /// Labels.
    pub labels: Option<Vec<String>>,
    /// Link targets, in order (the marks of targets kept stay).
    pub links: Option<Vec<String>>,
}

/// The notes database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

/// The user id of `users/{user}`.
pub fn user_id(name: &str) -> &str {
    name.strip_prefix("users/").unwrap_or(name)
}

impl Store {
    /// A store on `pool` (migrated).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Creates `new` for `creator`; with a `request_id` the creator used before, the note that
    /// request made.
    pub async fn create(
        &self,
        new: &NewNote,
        creator: &str,
        request_id: Option<uuid::Uuid>,
    ) -> Result<NoteRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        let project_id = new.parent.strip_prefix("projects/").unwrap_or_default();
        let made: Option<NoteRow> = sqlx::query_as(&format!(
            "INSERT INTO notes AS n (note_id, parent, project_id, title, body, color, pinned, \
               archived, labels, creator, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (creator, request_id) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(taskmesh_mesh::aip::new_id())
        .bind(&new.parent)
        .bind(project_id)
        .bind(&new.title)
        .bind(&new.body)
        .bind(new.color)
        .bind(new.pinned)
        .bind(new.archived)
        .bind(&new.labels)
        .bind(creator)
        .bind(request_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(made) = made {
            set_links(&mut tx, &made.note_id, &new.links).await?;
            tx.commit().await?;
            return Ok(made);
        }
        drop(tx);
        // The request was made before: its note.
        let first: Option<NoteRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notes n WHERE n.creator = $1 AND n.request_id = $2"
        ))
        .bind(creator)
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        first.ok_or_else(|| StoreError::NotFound("the note of this request".to_owned()))
    }

    /// The note with id `note_id`, deleted or not.
    pub async fn note(&self, note_id: &str) -> Result<Option<NoteRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notes n WHERE n.note_id = $1"
        ))
        .bind(note_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// What `caller` (`users/{user}`) may do with `note`.
    pub async fn access(&self, note: &NoteRow, caller: &str) -> Result<Access, StoreError> {
        if note.parent == caller {
            return Ok(Access::Own);
        }
        let user = user_id(caller);
        if note.project_id.is_empty() {
            let role: Option<i16> = sqlx::query_scalar(
                "SELECT role FROM note_shares WHERE note_id = $1 AND user_id = $2",
            )
            .bind(&note.note_id)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
            return Ok(match role {
                Some(2) => Access::Write,
                Some(_) => Access::Read,
                None => Access::None,
            });
        }
        let role: Option<i16> = sqlx::query_scalar(
            "SELECT role FROM members WHERE project_id = $1 AND user_id = $2 AND role > 0",
        )
        .bind(&note.project_id)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match role {
            Some(roles::ADMIN | roles::OWNER) => Access::Own,
            Some(roles::MEMBER) => Access::Write,
            Some(_) => Access::Read,
            None => Access::None,
        })
    }

    /// Applies `change` to a note whose etag, when given, is current.
    pub async fn update(
        &self,
        note_id: &str,
        etag: &str,
        change: &NoteChange,
    ) -> Result<NoteRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        let current: Option<NoteRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notes n WHERE n.note_id = $1 FOR UPDATE"
        ))
        .bind(note_id)
        .fetch_optional(&mut *tx)
        .await?;
        let current = current.ok_or_else(|| StoreError::NotFound(note_id.to_owned()))?;
        if !etag.is_empty() && etag != current.etag() {
            return Err(StoreError::EtagMismatch {
                name: current.name(),
                current: current.etag(),
            });
        }
        let row: NoteRow = sqlx::query_as(&format!(
            "UPDATE notes AS n SET title = coalesce($2, title), body = coalesce($3, body), \
               color = coalesce($4, color), pinned = coalesce($5, pinned), \
               archived = coalesce($6, archived), labels = coalesce($7, labels), \
               update_time = now(), version = version + 1 \
             WHERE n.note_id = $1 RETURNING {COLUMNS}"
        ))
        .bind(note_id)
        .bind(change.title.as_deref())
        .bind(change.body.as_deref())
        .bind(change.color)
        .bind(change.pinned)
        .bind(change.archived)
        .bind(change.labels.as_deref())
        .fetch_one(&mut *tx)
        .await?;
        if let Some(links) = &change.links {
            set_links(&mut tx, note_id, links).await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    /// Brings a deleted note back.
    pub async fn undelete(&self, note_id: &str) -> Result<NoteRow, StoreError> {
        let row: Option<NoteRow> = sqlx::query_as(&format!(
            "UPDATE notes AS n SET delete_time = NULL, purge_time = NULL, update_time = now(), \
               version = version + 1 \
             WHERE n.note_id = $1 AND n.delete_time IS NOT NULL RETURNING {COLUMNS}"
        ))
        .bind(note_id)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or_else(|| StoreError::NotFound(format!("deleted note {note_id}")))
    }

    /// The links of each of `note_ids`: `(target, broken since)` in their order.
    pub async fn links_of(
        &self,
        note_ids: &[String],
    ) -> Result<HashMap<String, Vec<(String, Option<DateTime<Utc>>)>>, StoreError> {
        let rows: Vec<(String, String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT note_id, target, broken_time FROM note_links WHERE note_id = ANY($1) \
             ORDER BY note_id, position",
        )
        .bind(note_ids)
        .fetch_all(&self.pool)
        .await?;
        let mut links: HashMap<String, Vec<_>> = HashMap::new();
        for (note, target, broken) in rows {
            links.entry(note).or_default().push((target, broken));
        }
        Ok(links)
    }

    /// Records that `target` (a project or a task) is deleted or back, as the event at stream
    /// position `seq` says, unless a later event said otherwise already; then marks or mends the
    /// links to it and, for a project, to its tasks. A link stays broken while its task or the
    /// task's project is deleted. How many links were looked at (0 for an older event).
    pub async fn set_target_deleted(
        &self,
        target: &str,
        deleted: bool,
        seq: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let newer = sqlx::query(
            "INSERT INTO link_targets (target, deleted, seq) VALUES ($1, $2, $3) \
             ON CONFLICT (target) DO UPDATE SET deleted = EXCLUDED.deleted, seq = EXCLUDED.seq \
             WHERE link_targets.seq < EXCLUDED.seq",
        )
        .bind(target)
        .bind(deleted)
        .bind(seq)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if newer == 0 {
            return Ok(0);
        }
        // Ids are `[a-z0-9-]`: nothing in a target is a LIKE wildcard.
        let done = sqlx::query(
            "UPDATE note_links l SET broken_time = CASE WHEN s.gone \
               THEN coalesce(l.broken_time, now()) ELSE NULL END \
             FROM (SELECT k.note_id, k.target, EXISTS (SELECT 1 FROM link_targets t \
                     WHERE t.deleted AND (t.target = k.target OR k.target LIKE t.target || '/tasks/%')) AS gone \
                   FROM note_links k WHERE k.target = $1 OR k.target LIKE $1 || '/tasks/%') s \
             WHERE l.note_id = s.note_id AND l.target = s.target",
        )
        .bind(target)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Whom a note is shared with: `(user id, role, since)`, by user id.
    pub async fn shares(
        &self,
        note_id: &str,
    ) -> Result<Vec<(String, i16, DateTime<Utc>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT user_id, role, create_time FROM note_shares WHERE note_id = $1 ORDER BY user_id",
        )
        .bind(note_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes a note softly; it is purged `keep` later.
    pub async fn delete(
        &self,
        note_id: &str,
        keep: chrono::TimeDelta,
    ) -> Result<NoteRow, StoreError> {
        let row: Option<NoteRow> = sqlx::query_as(&format!(
            "UPDATE notes AS n SET delete_time = now(), purge_time = now() + $2, \
               update_time = now(), version = version + 1 \
             WHERE n.note_id = $1 AND n.delete_time IS NULL RETURNING {COLUMNS}"
        ))
        .bind(note_id)
        .bind(keep)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or_else(|| StoreError::NotFound(note_id.to_owned()))
    }

    /// Removes for good the notes whose purge time has passed, with everything of theirs
    /// (shares, links, attachments and their bytes), at most `limit` at a time; how many.
    pub async fn purge_due(&self, limit: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM notes WHERE note_id IN (SELECT note_id FROM notes \
               WHERE purge_time <= now() ORDER BY purge_time LIMIT $1 FOR UPDATE SKIP LOCKED)",
        )
        .bind(limit)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Shares a personal note with `user` (`users/{user}`) as `role` (1 viewer, 2 editor).
    pub async fn share(&self, note_id: &str, user: &str, role: i16) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO note_shares (note_id, user_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT (note_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(note_id)
        .bind(user_id(user))
        .bind(role)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stops sharing a note with `user`; false when it was not shared with them.
    pub async fn unshare(&self, note_id: &str, user: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM note_shares WHERE note_id = $1 AND user_id = $2")
            .bind(note_id)
            .bind(user_id(user))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that `user` belongs to `project` (`projects/{project}`) as `role` (0: no longer),
    /// as of the event at `stream_seq`; an older event changes nothing.
    pub async fn set_member(
        &self,
        project: &str,
        user: &str,
        role: i16,
        stream_seq: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO members (project_id, user_id, role, stream_seq) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (project_id, user_id) DO UPDATE \
               SET role = excluded.role, stream_seq = excluded.stream_seq \
               WHERE members.stream_seq < excluded.stream_seq",
        )
        .bind(project.strip_prefix("projects/").unwrap_or(project))
        .bind(user_id(user))
        .bind(role)
        .bind(stream_seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The role of `user` (`users/{user}`) in project `project_id`, if they belong to it.
    pub async fn member_role(
        &self,
        project_id: &str,
        user: &str,
    ) -> Result<Option<i16>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT role FROM members WHERE project_id = $1 AND user_id = $2 AND role > 0",
        )
        .bind(project_id)
        .bind(user_id(user))
        .fetch_optional(&self.pool)
        .await?)
    }
}

/// Makes `targets` (in order) the links of `note_id`: links dropped go, links kept keep their
/// broken mark.
async fn set_links(
    tx: &mut sqlx::PgConnection,
    note_id: &str,
    targets: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM note_links WHERE note_id = $1 AND NOT (target = ANY($2))")
        .bind(note_id)
        .bind(targets)
        .execute(&mut *tx)
        .await?;
    if targets.is_empty() {
        return Ok(());
    }
    let positions: Vec<i32> = (0..i32::try_from(targets.len()).unwrap_or(i32::MAX)).collect();
    sqlx::query(
        "INSERT INTO note_links (note_id, target, position) \
         SELECT $1, t, p FROM unnest($2::text[], $3::int[]) AS u(t, p) \
         ON CONFLICT (note_id, target) DO UPDATE SET position = excluded.position",
    )
    .bind(note_id)
    .bind(targets)
    .bind(&positions)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
