//! The tasks service's errors: one enum for what its store, projectors and start-up report, and one
//! mapping to a gRPC status. Causes are logged, never sent to a client.

use std::collections::HashMap;

use taskmesh_clients::projects::EndpointError;
use taskmesh_mesh::status::{self, with_reason};
use tonic::{Code, Status};

use crate::domain::events::DecodeError;

/// Why a write to a task was refused although it was well formed (`ErrorInfo.reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The board holds as many live tasks as allowed (`TASK_QUOTA_EXCEEDED`).
    TaskQuotaExceeded {
        /// The board.
        board: String,
        /// Its live tasks.
        live: i64,
        /// The limit.
        limit: i64,
    },
    /// Undelete of a task that is not deleted (`NOT_DELETED`).
    NotDeleted(String),
    /// Complete of a task that is complete (`ALREADY_COMPLETED`).
    AlreadyCompleted(String),
    /// Reopen of a task that is open (`NOT_COMPLETED`).
    NotCompleted(String),
    /// The board has no column of kind Done to complete into (`NO_DONE_COLUMN`).
    NoDoneColumn(String),
    /// The board has no open column to reopen into (`NO_OPEN_COLUMN`).
    NoOpenColumn(String),
}

impl Refusal {
    /// The UPPER_SNAKE_CASE reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TaskQuotaExceeded { .. } => "TASK_QUOTA_EXCEEDED",
            Self::NotDeleted(_) => "NOT_DELETED",
            Self::AlreadyCompleted(_) => "ALREADY_COMPLETED",
            Self::NotCompleted(_) => "NOT_COMPLETED",
            Self::NoDoneColumn(_) => "NO_DONE_COLUMN",
            Self::NoOpenColumn(_) => "NO_OPEN_COLUMN",
        }
    }

    /// What the caller is told.
    pub fn message(&self) -> String {
        match self {
            Self::TaskQuotaExceeded { board, live, limit } => {
                format!("{board} already holds {live} tasks, the limit is {limit}")
            }
            Self::NotDeleted(task) => format!("{task} is not deleted"),
            Self::AlreadyCompleted(task) => format!("{task} is already complete"),
            Self::NotCompleted(task) => format!("{task} is not complete"),
            Self::NoDoneColumn(board) => format!("{board} has no Done column"),
            Self::NoOpenColumn(board) => format!("{board} has no open column"),
        }
    }
}

/// What went wrong inside the tasks service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed.
    #[error("database")]
    Database(#[from] sqlx::Error),
    /// An event of the change could not be put in the outbox (too large, or the database).
    #[error(transparent)]
    Event(#[from] taskmesh_events::EnqueueError),
    /// A stored event does not decode (the event store is damaged).
    #[error("a stored event does not decode")]
    CorruptEvent(#[source] DecodeError),
    /// The caller's etag is stale (another write came first).
    #[error("{resource} changed (now {current})")]
    EtagMismatch {
        /// The task.
        resource: String,
        /// Its current etag.
        current: String,
    },
    /// A well-formed write refused for a reason the caller can act on.
    #[error("refused: {0:?}")]
    Refused(Refusal),
    /// The projects endpoint is malformed.
    #[error(transparent)]
    Projects(#[from] EndpointError),
    /// The keys that seal jobs' secrets could not be read or are malformed.
    #[error("job sealing keys: {0}")]
    Sealing(String),
}

impl From<taskmesh_mesh::vault::VaultError> for Error {
    fn from(err: taskmesh_mesh::vault::VaultError) -> Self {
        Self::Sealing(err.to_string())
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Database(err) => status::db_error(err),
            Error::Event(err) => err.into(),
            Error::EtagMismatch { resource, current } => status::etag_mismatch(&resource, &current),
            Error::Refused(refusal) => {
                let metadata = match &refusal {
                    Refusal::TaskQuotaExceeded { board, limit, .. } => HashMap::from([
                        ("board".to_owned(), board.clone()),
                        ("limit".to_owned(), limit.to_string()),
                    ]),
                    _ => HashMap::new(),
                };
                with_reason(
                    Code::FailedPrecondition,
                    refusal.message(),
                    refusal.reason(),
                    metadata,
                )
            }
            other @ (Error::CorruptEvent(_) | Error::Projects(_) | Error::Sealing(_)) => {
                status::internal(&other)
            }
        }
    }
}
