//! Attachments: a description row and the bytes in ordered chunks. An upload is one transaction
//! that appends chunks as they arrive and is committed only when the last byte is in, with the
//! file's size, checksum and sniffed type; a download reads one chunk at a time.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::{Store, StoreError};

/// A stored attachment's description.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttachmentRow {
    /// Its id.
    pub attachment_id: Uuid,
    /// The note it is attached to.
    pub note_id: String,
    /// The name as uploaded.
    pub filename: String,
    /// Sniffed type.
    pub content_type: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// `users/{user}`.
    pub creator: String,
    /// Attached then.
    pub create_time: DateTime<Utc>,
}

const COLUMNS: &str =
    "attachment_id, note_id, filename, content_type, size_bytes, sha256, creator, create_time";

/// An upload under way: nothing of it is visible until [`Upload::finish`].
#[derive(Debug)]
pub struct Upload {
    tx: Transaction<'static, Postgres>,
    id: Uuid,
    seq: i32,
    size: i64,
    hasher: Sha256,
}

/// What starting an upload found.
#[derive(Debug)]
pub enum Begun {
    /// A new upload.
    New(Box<Upload>),
    /// The attachment an earlier request with the same id made.
    Done(AttachmentRow),
}

impl Store {
    /// Starts attaching `filename` to `note_id` for `creator`; with a `request_id` the creator
    /// used before, the attachment that request made.
    pub async fn begin_upload(
        &self,
        note_id: &str,
        filename: &str,
        creator: &str,
        request_id: Option<Uuid>,
    ) -> Result<Begun, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = Uuid::now_v7();
        // A concurrent request with the same key waits here until the first commits or fails.
        let inserted = sqlx::query(
            "INSERT INTO attachments (attachment_id, note_id, filename, content_type, size_bytes, \
               sha256, creator, request_id) VALUES ($1, $2, $3, '', 0, '', $4, $5) \
             ON CONFLICT (creator, request_id) DO NOTHING",
        )
        .bind(id)
        .bind(note_id)
        .bind(filename)
        .bind(creator)
        .bind(request_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Begun::New(Box::new(Upload {
                tx,
                id,
                seq: 0,
                size: 0,
                hasher: Sha256::new(),
            })));
        }
        drop(tx);
        let first: Option<AttachmentRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM attachments WHERE creator = $1 AND request_id = $2"
        ))
        .bind(creator)
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        first
            .map(Begun::Done)
            .ok_or_else(|| StoreError::NotFound("the attachment of this request".to_owned()))
    }

    /// How many files are attached to `note_id`.
    pub async fn attachment_count(&self, note_id: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM attachments WHERE note_id = $1")
                .bind(note_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The attachment `id` of `note_id`.
    pub async fn attachment(
        &self,
        note_id: &str,
        id: Uuid,
    ) -> Result<Option<AttachmentRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM attachments WHERE note_id = $1 AND attachment_id = $2"
        ))
        .bind(note_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Every attachment of `note_id`, oldest first.
    pub async fn attachments(&self, note_id: &str) -> Result<Vec<AttachmentRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM attachments WHERE note_id = $1 ORDER BY create_time, attachment_id"
        ))
        .bind(note_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Chunk `seq` of attachment `id` (`None` past the last).
    pub async fn chunk(&self, id: Uuid, seq: i32) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT data FROM attachment_chunks WHERE attachment_id = $1 AND seq = $2",
        )
        .bind(id)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Removes attachment `id` of `note_id` and its bytes; whether there was one.
    pub async fn delete_attachment(&self, note_id: &str, id: Uuid) -> Result<bool, StoreError> {
        let deleted =
            sqlx::query("DELETE FROM attachments WHERE note_id = $1 AND attachment_id = $2")
                .bind(note_id)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(deleted == 1)
    }
}

impl Upload {
    /// Bytes so far.
    pub fn size(&self) -> i64 {
        self.size
    }

    /// Appends `data` as the next chunk.
    pub async fn append(&mut self, data: &[u8]) -> Result<(), StoreError> {
        if data.is_empty() {
            return Ok(());
        }
        sqlx::query("INSERT INTO attachment_chunks (attachment_id, seq, data) VALUES ($1, $2, $3)")
            .bind(self.id)
            .bind(self.seq)
            .bind(data)
            .execute(&mut *self.tx)
            .await?;
        self.hasher.update(data);
        self.seq += 1;
        self.size += i64::try_from(data.len()).unwrap_or(i64::MAX);
        Ok(())
    }

    /// Records the size, checksum and `content_type`, and makes the attachment visible.
    pub async fn finish(mut self, content_type: &str) -> Result<AttachmentRow, StoreError> {
        let sha256 = hex::encode(self.hasher.finalize());
        let row: AttachmentRow = sqlx::query_as(&format!(
            "UPDATE attachments SET content_type = $2, size_bytes = $3, sha256 = $4, \
               create_time = now() WHERE attachment_id = $1 RETURNING {COLUMNS}"
        ))
        .bind(self.id)
        .bind(content_type)
        .bind(self.size)
        .bind(&sha256)
        .fetch_one(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(row)
    }
}
