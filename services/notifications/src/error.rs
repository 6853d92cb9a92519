//! The notifications service's errors: one enum for its store and start-up, the reasons a client
//! can act on as variants, and one mapping to a gRPC status. Causes are logged, never sent.

use std::collections::HashMap;

use taskmesh_clients::projects::EndpointError;
use taskmesh_mesh::status::{self, with_reason};
use tonic::{Code, Status};

/// What went wrong inside the notifications service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed.
    #[error("database")]
    Database(#[from] sqlx::Error),
    /// No such resource.
    #[error("{0} not found")]
    NotFound(String),
    /// The caller's etag is not the current one.
    #[error("{name} changed since it was read")]
    EtagMismatch {
        /// The resource.
        name: String,
        /// Its current etag.
        current: String,
    },
    /// A field is wrong in a way only this service can tell (a zone, a filter, a URL).
    #[error("{field}: {problem}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The project has as many webhooks as allowed.
    #[error("a project may have at most {max} webhooks")]
    TooManyWebhooks {
        /// The limit.
        max: i64,
    },
    /// The caller has as many open streams as allowed.
    #[error("at most {max} notification streams per user at a time")]
    TooManyStreams {
        /// The limit.
        max: usize,
    },
    /// The projects endpoint is malformed.
    #[error(transparent)]
    Projects(#[from] EndpointError),
    /// The sealing keys or a sealed webhook secret could not be used.
    #[error("webhook secrets: {0}")]
    Sealing(String),
    /// The SMTP secret in Vault is missing or malformed.
    #[error("smtp: {0}")]
    Smtp(String),
}

impl Error {
    /// A field the caller got wrong.
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl From<taskmesh_mesh::status::FieldViolation> for Error {
    fn from(violation: taskmesh_mesh::status::FieldViolation) -> Self {
        Self::Invalid {
            field: violation.field,
            problem: violation.description,
        }
    }
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
            Error::NotFound(name) => status::not_found(&name),
            Error::EtagMismatch { name, current } => status::etag_mismatch(&name, &current),
            Error::Invalid { field, problem } => status::invalid_field(field, problem),
            err @ Error::TooManyWebhooks { .. } => with_reason(
                Code::FailedPrecondition,
                err.to_string(),
                "WEBHOOK_QUOTA_EXCEEDED",
                HashMap::new(),
            ),
            err @ Error::TooManyStreams { .. } => with_reason(
                Code::ResourceExhausted,
                err.to_string(),
                "TOO_MANY_STREAMS",
                HashMap::new(),
            ),
            other @ (Error::Projects(_) | Error::Sealing(_) | Error::Smtp(_)) => {
                status::internal(&other)
            }
        }
    }
}
