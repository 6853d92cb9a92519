//! The execution service's errors: one enum for its store and start-up, the reasons a client can
//! act on as variants, and one mapping to a gRPC status. Causes are logged, never sent.

use std::collections::HashMap;

use taskmesh_clients::projects::EndpointError;
use taskmesh_mesh::status::{self, with_reason};
use tonic::{Code, Status};

/// Why a state change of an execution was refused (`ErrorInfo.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Cancel of an execution that already ended.
    ExecutionFinal,
    /// Retry of an execution that neither failed nor was cancelled.
    ExecutionNotFailed,
}

impl Reason {
    /// The UPPER_SNAKE_CASE reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExecutionFinal => "EXECUTION_FINAL",
            Self::ExecutionNotFailed => "EXECUTION_NOT_FAILED",
        }
    }
}

/// What went wrong inside the execution service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed.
    #[error("database")]
    Database(#[from] sqlx::Error),
    /// An event of the change could not be put in the outbox (too large, or the database).
    #[error(transparent)]
    Event(#[from] taskmesh_events::EnqueueError),
    /// No execution of that name.
    #[error("{0} not found")]
    NotFound(String),
    /// The execution is in a state that does not allow the change.
    #[error("{message}")]
    Refused {
        /// Why.
        reason: Reason,
        /// For the caller.
        message: String,
        /// The execution's current state.
        state: String,
    },
    /// The projects endpoint is malformed.
    #[error(transparent)]
    Projects(#[from] EndpointError),
    /// The caller already holds as many watch streams as allowed.
    #[error("at most {max} watch streams per user are open at once")]
    TooManyWatches {
        /// The limit.
        max: usize,
    },
    /// The contracts' descriptors are unusable (a build problem).
    #[error("contracts: {0}")]
    Contracts(String),
    /// The egress settings are unusable.
    #[error(transparent)]
    Egress(#[from] taskmesh_mesh::config::ConfigError),
    /// The keys that open jobs' secrets could not be read or are malformed.
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
            Error::NotFound(name) => status::not_found(&name),
            Error::Refused {
                reason,
                message,
                state,
            } => with_reason(
                Code::FailedPrecondition,
                message,
                reason.as_str(),
                HashMap::from([("state".to_owned(), state)]),
            ),
            err @ Error::TooManyWatches { .. } => with_reason(
                Code::ResourceExhausted,
                err.to_string(),
                "TOO_MANY_WATCHES",
                HashMap::new(),
            ),
            other @ (Error::Projects(_)
            | Error::Egress(_)
            | Error::Contracts(_)
            | Error::Sealing(_)) => status::internal(&other),
        }
    }
}
