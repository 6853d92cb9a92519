//! What can go wrong in the marketplace service, and its one mapping to a gRPC status. Causes are
//! logged, never sent.

use std::collections::HashMap;

use taskmesh_mesh::status;
use tonic::{Code, Status};

use crate::store::StoreError;

/// `ErrorInfo` reasons of refusals that depend on state.
pub mod reasons {
    /// The caller is a provider already.
    pub const PROVIDER_EXISTS: &str = "PROVIDER_EXISTS";
    /// A category id is taken.
    pub const CATEGORY_EXISTS: &str = "CATEGORY_EXISTS";
    /// A category still holds sub-categories or listings.
    pub const CATEGORY_IN_USE: &str = "CATEGORY_IN_USE";
    /// The booking is not a completed booking of the caller for this listing.
    pub const BOOKING_NOT_COMPLETED: &str = "BOOKING_NOT_COMPLETED";
    /// The booking has its review.
    pub const ALREADY_REVIEWED: &str = "ALREADY_REVIEWED";
    /// The review can no longer be changed.
    pub const REVIEW_LOCKED: &str = "REVIEW_LOCKED";
}

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
    /// The caller may not do this.
    #[error("{0}")]
    Denied(String),
    /// The state of things refuses it (FAILED_PRECONDITION with a reason).
    #[error("{message}")]
    Precondition {
        /// An [`reasons`] constant.
        reason: &'static str,
        /// For the client.
        message: String,
    },
}

impl Error {
    /// A malformed field.
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// A refusal by state.
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Precondition {
            reason,
            message: message.into(),
        }
    }
}

impl From<taskmesh_mesh::names::NameError> for Error {
    fn from(err: taskmesh_mesh::names::NameError) -> Self {
        let field = err.field.clone();
        Self::invalid(field, err.to_string())
    }
}

impl From<taskmesh_mesh::status::FieldViolation> for Error {
    fn from(violation: taskmesh_mesh::status::FieldViolation) -> Self {
        Self::invalid(violation.field, violation.description)
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
            Error::Store(StoreError::Exists { reason, name }) => status::with_reason(
                Code::AlreadyExists,
                format!("{name} exists already"),
                reason,
                HashMap::from([("resource".to_owned(), name)]),
            ),
            Error::Store(StoreError::Refused { reason, message })
            | Error::Precondition { reason, message } => {
                status::with_reason(Code::FailedPrecondition, message, reason, HashMap::new())
            }
            Error::Invalid { field, problem } => status::invalid_field(field, problem),
            Error::Denied(message) => Status::new(Code::PermissionDenied, message),
        }
    }
}
