//! Per-call context: request id, correlation id, trace id, deadline and (until the identity service
//! lands) the caller taken from metadata. The server layer fills it in and handlers read it from the
//! request extensions.

use std::time::{Duration, Instant};

use tonic::Request;

/// Metadata key carrying the request id; generated when absent and echoed on the response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Metadata key carrying the correlation id shared by every call and event of one user action.
pub const CORRELATION_ID_HEADER: &str = "x-correlation-id";
/// Metadata key naming the calling user (`users/{user}`). Trusted as is until verified tokens
/// replace it.
pub const CALLER_HEADER: &str = "x-taskmesh-user";

/// What the server knows about the call being handled.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// Unique per call.
    pub request_id: String,
    /// Shared by the calls and events of one user action.
    pub correlation_id: String,
    /// W3C trace id (32 hex digits).
    pub trace_id: String,
    /// W3C `traceparent` to propagate to calls and events made while handling this one.
    pub traceparent: String,
    /// The point after which the client no longer waits.
    pub deadline: Option<Instant>,
    /// The caller, `users/{user}`.
    pub caller: String,
}

impl CallContext {
    /// A context for work that does not come from a call (tests, background jobs).
    pub fn background() -> Self {
        let request_id = uuid::Uuid::now_v7().to_string();
        let trace_id = uuid::Uuid::new_v4().simple().to_string();
        let span_id = &uuid::Uuid::new_v4().simple().to_string()[..16];
        Self {
            correlation_id: request_id.clone(),
            traceparent: format!("00-{trace_id}-{span_id}-01"),
            trace_id,
            request_id,
            deadline: None,
            caller: ANONYMOUS.to_owned(),
        }
    }

    /// The context of a tonic request, or a background one when the layer did not run (unit tests).
    pub fn of<T>(request: &Request<T>) -> Self {
        request
            .extensions()
            .get::<CallContext>()
            .cloned()
            .unwrap_or_else(Self::background)
    }

    /// Time left before the deadline, if any.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

/// The caller used when a request names none.
pub const ANONYMOUS: &str = "users/anonymous";
