//! Per-call context: request id, correlation id, trace id, deadline and the authenticated caller
//! with the credential to forward. The server layer fills it in and handlers read it from the
//! request extensions.

use std::time::{Duration, Instant};

use tonic::Request;

use crate::auth::{Caller, Credential, Scope};

/// Metadata key carrying the request id; generated when absent and echoed on the response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Metadata key carrying the correlation id shared by every call and event of one user action.
pub const CORRELATION_ID_HEADER: &str = "x-correlation-id";

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
    /// The caller, `users/{user}` ([`ANONYMOUS`] on public methods).
    pub caller: String,
    /// What the caller's credential allows.
    pub scope: Scope,
    /// The caller's credential, passed on to the services this call calls.
    pub credential: Option<Credential>,
}

impl CallContext {
    /// PERMISSION_DENIED unless the caller is one of the configured `auth.operators`.
    pub fn require_operator(&self, operators: &[String]) -> Result<(), tonic::Status> {
        if operators.contains(&self.caller) {
            Ok(())
        } else {
            Err(tonic::Status::permission_denied(
                "only the platform's operators (auth.operators) may call this",
            ))
        }
    }

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
            scope: Scope::Read,
            credential: None,
        }
    }

    /// This context acting for `caller`.
    pub fn with_caller(mut self, caller: Caller) -> Self {
        self.caller = caller.user;
        self.scope = caller.scope;
        self.credential = Some(caller.credential);
        self
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
