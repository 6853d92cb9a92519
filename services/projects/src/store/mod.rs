//! PostgreSQL access of the projects service. Each resource has a module whose functions run one
//! transaction: they check the rules that need the database (uniqueness, limits, parents), write the
//! change, and put the matching event in the outbox in the same transaction.

mod access;
pub mod boards;
pub mod columns;
pub mod members;
pub mod organizations;
pub mod personal;
pub mod projects;

use crate::error::{Error, Reason};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use taskmesh_events::{Outbox, OutgoingEvent};
use taskmesh_mesh::CallContext;
pub(crate) use taskmesh_mesh::aip::fingerprint;
pub(crate) use taskmesh_mesh::time::to_timestamp as timestamp;
use uuid::Uuid;

use crate::domain::rules::{Limits, etag};

/// Shared handles of the store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    outbox: Outbox,
    limits: Limits,
}

impl Store {
    /// A store over `pool` that writes events into `outbox`.
    pub fn new(pool: PgPool, outbox: Outbox, limits: Limits) -> Self {
        Self {
            pool,
            outbox,
            limits,
        }
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Postgres>, Error> {
        Ok(self.pool.begin().await?)
    }

    /// Commits and wakes the outbox relay.
    pub(crate) async fn commit(&self, tx: Transaction<'static, Postgres>) -> Result<(), Error> {
        tx.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Puts an event describing a change into the outbox, inside the change's transaction.
    pub(crate) async fn emit<M: prost::Name>(
        &self,
        conn: &mut PgConnection,
        context: &CallContext,
        resource: &str,
        message: &M,
    ) -> Result<(), Error> {
        let event = OutgoingEvent::new(resource, message)
            .caused_by(&context.correlation_id, &context.traceparent);
        Ok(self.outbox.enqueue(conn, &event).await?)
    }
}

/// Claims `request_id` of `caller` for `method` on behalf of `resource`
/// ([`taskmesh_mesh::db::claim_request_id`]); `None` without an id.
pub(crate) async fn claim_request_id(
    conn: &mut PgConnection,
    method: &str,
    caller: &str,
    request_id: Option<Uuid>,
    resource: &str,
) -> Result<Option<String>, Error> {
    let Some(request_id) = request_id else {
        return Ok(None);
    };
    Ok(taskmesh_mesh::db::claim_request_id(conn, method, caller, request_id, resource).await?)
}

/// Changes to an organization, project or board; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct NameChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New description.
    pub description: Option<String>,
}

/// What the write paths need to know of a stored row: its version (the etag) and whether it is
/// soft-deleted. Resources without soft delete keep the default.
pub(crate) trait Versioned {
    /// The row's version.
    fn version(&self) -> i64;
    /// True when the row is soft-deleted.
    fn deleted(&self) -> bool {
        false
    }
}

/// NOT_FOUND for `resource`.
pub(crate) fn not_found(resource: &str) -> Error {
    Error::NotFound(resource.to_owned())
}

/// The row an update or delete may change: NOT_FOUND when it is missing or soft-deleted, ABORTED
/// when the caller's etag is stale.
pub(crate) fn writable<R: Versioned>(
    row: Option<R>,
    resource: &str,
    given_etag: &str,
) -> Result<R, Error> {
    let row = row
        .filter(|r| !r.deleted())
        .ok_or_else(|| not_found(resource))?;
    check_etag(resource, given_etag, row.version())?;
    Ok(row)
}

/// The row an undelete may restore: NOT_FOUND when missing, ABORTED when the etag is stale,
/// FAILED_PRECONDITION `NOT_DELETED` when it is live.
pub(crate) fn restorable<R: Versioned>(
    row: Option<R>,
    resource: &str,
    given_etag: &str,
) -> Result<R, Error> {
    let row = row.ok_or_else(|| not_found(resource))?;
    check_etag(resource, given_etag, row.version())?;
    if !row.deleted() {
        return Err(precondition(
            format!("{resource} is not deleted"),
            Reason::NotDeleted,
            &[("resource", resource.to_owned())],
        ));
    }
    Ok(row)
}

/// ABORTED when `given` is set and differs from the etag of `version`.
pub(crate) fn check_etag(resource: &str, given: &str, version: i64) -> Result<(), Error> {
    let current = etag(version);
    if given.is_empty() || given == current {
        Ok(())
    } else {
        Err(Error::EtagMismatch {
            resource: resource.to_owned(),
            current,
        })
    }
}

/// Maps a database error: a unique violation on a display-name index is `DISPLAY_NAME_TAKEN`, any
/// other unique violation `RESOURCE_EXISTS` for `resource`; everything else stays a database error.
pub(crate) fn conflict(err: sqlx::Error, resource: &str, kind: &str) -> Error {
    if let sqlx::Error::Database(db) = &err
        && db.code().as_deref() == Some("23505")
    {
        if db.constraint().is_some_and(|c| c.contains("display_name")) {
            return Error::DisplayNameTaken {
                kind: kind.to_owned(),
            };
        }
        return Error::AlreadyExists(resource.to_owned());
    }
    Error::Database(err)
}

/// FAILED_PRECONDITION with a reason and metadata.
pub(crate) fn precondition(
    message: impl Into<String>,
    reason: Reason,
    metadata: &[(&'static str, String)],
) -> Error {
    Error::precondition(reason, message, metadata)
}

/// How a row is read: plainly, or locked for the rest of the transaction (`FOR UPDATE`) because
/// the transaction is about to change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// A plain read.
    Plain,
    /// Locked against concurrent writers until commit.
    ForUpdate,
}

impl Read {
    /// The SQL suffix of the `SELECT`.
    pub(crate) fn clause(self) -> &'static str {
        match self {
            Self::Plain => "",
            Self::ForUpdate => " FOR UPDATE",
        }
    }
}
