//! What can go wrong in the notes service, and its one mapping to a gRPC status. Causes are
//! logged, never sent.

use taskmesh_mesh::status;
use tonic::{Code, Status};

use crate::store::StoreError;

/// Why a call or the start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Storage failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A field is malformed.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The caller may not do this with the note (or may not know it exists: NOT_FOUND then).
    #[error("{0}")]
    Denied(String),
}

impl Error {
    /// A malformed field.
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Store(StoreError::Database(err)) => status::db_error(err),
            Error::Store(StoreError::NotFound(name)) => status::not_found(&name),
            Error::Store(StoreError::EtagMismatch { name, current }) => {
                status::etag_mismatch(&name, &current)
            }
            Error::Invalid { field, problem } => status::invalid_field(field, problem),
            Error::Denied(message) => Status::new(Code::PermissionDenied, message),
        }
    }
}
