//! The scheduler's errors: one enum for its store and start-up, the reasons a client can act on
//! as variants, and one mapping to a gRPC status. Causes are logged, never sent.

use std::collections::HashMap;

use taskmesh_clients::projects::EndpointError;
use taskmesh_mesh::status::{self, with_reason};
use tonic::{Code, Status};

use crate::domain::trigger::Invalid;

/// Why a state change of a schedule was refused (`ErrorInfo.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Pause or resume of a schedule with no occurrence left.
    ScheduleCompleted,
    /// The project holds as many schedules as allowed.
    ScheduleQuotaExceeded,
}

impl Reason {
    /// The UPPER_SNAKE_CASE reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScheduleCompleted => "SCHEDULE_COMPLETED",
            Self::ScheduleQuotaExceeded => "SCHEDULE_QUOTA_EXCEEDED",
        }
    }
}

/// What went wrong inside the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed.
    #[error("database")]
    Database(#[from] sqlx::Error),
    /// An event could not be put in the outbox (too large, or the database).
    #[error(transparent)]
    Event(#[from] taskmesh_events::EnqueueError),
    /// No schedule of that name.
    #[error("{0} not found")]
    NotFound(String),
    /// The caller's etag is not the current one.
    #[error("{name} changed since it was read")]
    EtagMismatch {
        /// The schedule.
        name: String,
        /// Its current etag.
        current: String,
    },
    /// A field of the request is wrong in a way only the scheduler can tell (an expression).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The schedule is in a state that does not allow the change.
    #[error("{message}")]
    Refused {
        /// Why.
        reason: Reason,
        /// For the caller.
        message: String,
    },
    /// The caller has as many reminders on the task as allowed.
    #[error("at most {max} reminders per task and user")]
    TooManyReminders {
        /// The limit.
        max: i64,
    },
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
            Error::NotFound(name) => status::not_found(&name),
            Error::EtagMismatch { name, current } => status::etag_mismatch(&name, &current),
            Error::Invalid(invalid) => status::invalid_field(invalid.field, invalid.problem),
            Error::Refused { reason, message } => with_reason(
                Code::FailedPrecondition,
                message,
                reason.as_str(),
                HashMap::new(),
            ),
            err @ Error::TooManyReminders { .. } => with_reason(
                Code::ResourceExhausted,
                err.to_string(),
                "TOO_MANY_REMINDERS",
                HashMap::new(),
            ),
            other @ (Error::Projects(_) | Error::Sealing(_)) => status::internal(&other),
        }
    }
}
