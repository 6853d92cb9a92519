//! The projects service's errors: one enum for what its store reports, the reasons a client can act
//! on as variants, and one mapping to a gRPC status. Causes are logged, never sent.

use std::collections::HashMap;

use taskmesh_mesh::names::NameError;
use taskmesh_mesh::status::{self, FieldViolation, with_reason};
use tonic::{Code, Status};

/// Why a well-formed write was refused (`ErrorInfo.reason` of FAILED_PRECONDITION).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Undelete of something that is not deleted.
    NotDeleted,
    /// A write under a soft-deleted parent.
    ParentDeleted,
    /// An organization (or a creator's personal space) holds the most projects allowed.
    ProjectLimitReached,
    /// A project holds the most boards allowed.
    BoardLimitReached,
    /// A board holds the most columns allowed.
    ColumnLimitReached,
    /// Delete of an organization that still has projects.
    OrganizationNotEmpty,
    /// The change would leave a project without an owner.
    LastOwner,
    /// A personal organization could not be made: the user's id and every fallback id are taken.
    OrganizationExists,
}

impl Reason {
    /// The UPPER_SNAKE_CASE reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotDeleted => "NOT_DELETED",
            Self::ParentDeleted => "PARENT_DELETED",
            Self::ProjectLimitReached => "PROJECT_LIMIT_REACHED",
            Self::BoardLimitReached => "BOARD_LIMIT_REACHED",
            Self::ColumnLimitReached => "COLUMN_LIMIT_REACHED",
            Self::OrganizationNotEmpty => "ORGANIZATION_NOT_EMPTY",
            Self::LastOwner => "LAST_OWNER",
            Self::OrganizationExists => "ORGANIZATION_EXISTS",
        }
    }
}

/// What went wrong inside the projects service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed.
    #[error("database")]
    Database(#[from] sqlx::Error),
    /// An event of the change could not be put in the outbox (too large, or the database).
    #[error(transparent)]
    Event(#[from] taskmesh_events::EnqueueError),
    /// No such resource (or the caller may not know of it).
    #[error("{0} not found")]
    NotFound(String),
    /// The caller's etag is stale.
    #[error("{resource} changed (now {current})")]
    EtagMismatch {
        /// The resource name.
        resource: String,
        /// Its current etag.
        current: String,
    },
    /// Another resource of the same kind in the same parent has this display name.
    #[error("another {kind} in the same parent already has this display_name")]
    DisplayNameTaken {
        /// `project`, `board`, ...
        kind: String,
    },
    /// The resource exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A well-formed write refused for a reason the caller can act on.
    #[error("{message}")]
    Precondition {
        /// Why.
        reason: Reason,
        /// For the caller.
        message: String,
        /// `ErrorInfo.metadata`.
        metadata: Vec<(&'static str, String)>,
    },
    /// The caller's role does not allow this.
    #[error("{0}")]
    PermissionDenied(String),
    /// A request field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] FieldViolation),
    /// A request field is not a resource name of the expected shape.
    #[error(transparent)]
    Name(#[from] NameError),
}

impl Error {
    /// FAILED_PRECONDITION with `reason`.
    pub fn precondition(
        reason: Reason,
        message: impl Into<String>,
        metadata: &[(&'static str, String)],
    ) -> Self {
        Self::Precondition {
            reason,
            message: message.into(),
            metadata: metadata.to_vec(),
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Database(err) => status::db_error(err),
            Error::Event(err) => err.into(),
            Error::NotFound(resource) => status::not_found(&resource),
            Error::EtagMismatch { resource, current } => status::etag_mismatch(&resource, &current),
            Error::DisplayNameTaken { kind } => with_reason(
                Code::AlreadyExists,
                format!("another {kind} in the same parent already has this display_name"),
                "DISPLAY_NAME_TAKEN",
                HashMap::from([("kind".to_owned(), kind)]),
            ),
            Error::AlreadyExists(resource) => with_reason(
                Code::AlreadyExists,
                format!("{resource} already exists"),
                "RESOURCE_EXISTS",
                HashMap::from([("resource".to_owned(), resource)]),
            ),
            Error::Precondition {
                reason,
                message,
                metadata,
            } => with_reason(
                Code::FailedPrecondition,
                message,
                reason.as_str(),
                metadata
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            ),
            Error::PermissionDenied(message) => Status::permission_denied(message),
            Error::Invalid(violation) => violation.into(),
            Error::Name(err) => err.into(),
        }
    }
}
