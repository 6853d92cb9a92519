//! The identity service's errors: one enum for its store, signing keys and start-up, the reasons a
//! client can act on as variants, and one mapping to a gRPC status. Causes are logged, never sent.

use std::collections::HashMap;

use taskmesh_mesh::status::{self, with_reason};
use tonic::{Code, Status};

use crate::keys::KeyError;

/// Why a call was refused although it was well formed (`ErrorInfo.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An API key tried what needs a signed-in session (PERMISSION_DENIED).
    SessionRequired,
    /// Login before the registration saga finished (FAILED_PRECONDITION).
    RegistrationPending,
    /// A rotated refresh token came back: its whole family is revoked (UNAUTHENTICATED).
    RefreshTokenReused,
    /// ChangePassword with a wrong current password (PERMISSION_DENIED).
    WrongPassword,
}

impl Refusal {
    /// The UPPER_SNAKE_CASE reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::SessionRequired => "SESSION_REQUIRED",
            Self::RegistrationPending => "REGISTRATION_PENDING",
            Self::RefreshTokenReused => "REFRESH_TOKEN_REUSED",
            Self::WrongPassword => "WRONG_PASSWORD",
        }
    }

    fn code(self) -> Code {
        match self {
            Self::SessionRequired | Self::WrongPassword => Code::PermissionDenied,
            Self::RegistrationPending => Code::FailedPrecondition,
            Self::RefreshTokenReused => Code::Unauthenticated,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::SessionRequired => "API keys cannot do this; sign in and use the access token",
            Self::RegistrationPending => {
                "the registration is still being completed; try again in a moment"
            }
            Self::RefreshTokenReused => {
                "this refresh token was already used; every session token of its login is revoked"
            }
            Self::WrongPassword => "the current password is wrong",
        }
    }
}

/// What went wrong inside the identity service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed.
    #[error("database")]
    Database(#[from] sqlx::Error),
    /// An event of the change could not be put in the outbox (too large, or the database).
    #[error(transparent)]
    Event(#[from] taskmesh_events::EnqueueError),
    /// No such user or key.
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
    /// The email or username of a registration is taken (`ALREADY_REGISTERED`).
    #[error("this {field} is already registered")]
    AlreadyRegistered {
        /// `email` or `username`.
        field: &'static str,
    },
    /// A well-formed call refused for a reason the caller can act on.
    #[error("{}", .0.message())]
    Refused(Refusal),
    /// The signing keys in Vault are missing or unusable.
    #[error("signing keys")]
    Keys(#[from] KeyError),
    /// Vault refused to hand out the signing keys.
    #[error("reading the signing keys from Vault")]
    Vault(#[from] taskmesh_mesh::vault::VaultError),
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Database(err) => status::db_error(err),
            Error::Event(err) => err.into(),
            Error::NotFound(resource) => status::not_found(&resource),
            Error::EtagMismatch { resource, current } => status::etag_mismatch(&resource, &current),
            Error::AlreadyRegistered { field } => with_reason(
                Code::AlreadyExists,
                format!("this {field} is already registered"),
                "ALREADY_REGISTERED",
                HashMap::from([("field".to_owned(), field.to_owned())]),
            ),
            Error::Refused(refusal) => with_reason(
                refusal.code(),
                refusal.message(),
                refusal.reason(),
                HashMap::new(),
            ),
            other @ (Error::Keys(_) | Error::Vault(_)) => status::internal(&other),
        }
    }
}
