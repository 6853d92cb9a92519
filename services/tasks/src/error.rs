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
}

/// What went wrong inside the tasks service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed.
    #[error("database")]
    Database(#[from] sqlx::Error),
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
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Database(err) => status::db_error(err),
            Error::EtagMismatch { resource, current } => status::etag_mismatch(&resource, &current),
            Error::Refused(Refusal::TaskQuotaExceeded { board, live, limit }) => with_reason(
                Code::FailedPrecondition,
                format!("{board} already holds {live} tasks, the limit is {limit}"),
                "TASK_QUOTA_EXCEEDED",
                HashMap::from([
                    ("board".to_owned(), board),
                    ("limit".to_owned(), limit.to_string()),
                ]),
            ),
            other @ (Error::CorruptEvent(_) | Error::Projects(_)) => status::internal(&other),
        }
    }
}
