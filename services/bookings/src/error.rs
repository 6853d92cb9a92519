//! What can go wrong in the bookings service, and its one mapping to a gRPC status. Causes are
//! logged, never sent.

use std::collections::HashMap;

use taskmesh_mesh::status;
use tonic::{Code, Status};

use crate::domain::state::Refusal;
use crate::store::StoreError;

/// `ErrorInfo` reasons of refusals that depend on state.
pub mod reasons {
    /// Another booking holds (part of) the time.
    pub const SLOT_TAKEN: &str = "SLOT_TAKEN";
    /// The time is not a slot the provider's availability offers.
    pub const SLOT_UNAVAILABLE: &str = "SLOT_UNAVAILABLE";
    /// The listing is a draft or deleted.
    pub const LISTING_NOT_BOOKABLE: &str = "LISTING_NOT_BOOKABLE";
    /// Not from the booking's state.
    pub const WRONG_STATE: &str = "WRONG_STATE";
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
        /// A [`reasons`] constant.
        reason: &'static str,
        /// For the client.
        message: String,
    },
    /// Another service answered with this status (already mapped for the client).
    #[error("{0}")]
    Upstream(Status),
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

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NotAllowed(_) => Self::Denied(refusal.to_string()),
            Refusal::WrongState { .. } | Refusal::NotStarted => {
                Self::precondition(reasons::WRONG_STATE, refusal.to_string())
            }
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
            Error::Store(StoreError::Taken(name)) => status::with_reason(
                Code::FailedPrecondition,
                format!("{name}: the time is taken by another booking (or its buffer)"),
                reasons::SLOT_TAKEN,
                HashMap::from([("resource".to_owned(), name)]),
            ),
            Error::Precondition { reason, message } => {
                status::with_reason(Code::FailedPrecondition, message, reason, HashMap::new())
            }
            Error::Invalid { field, problem } => status::invalid_field(field, problem),
            Error::Denied(message) => Status::new(Code::PermissionDenied, message),
            Error::Upstream(status) => status,
        }
    }
}
