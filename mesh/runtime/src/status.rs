//! Building `google.rpc.Status` errors with `ErrorInfo` and `BadRequest` details, so every service
//! reports broken rules the same way. Internal errors log their cause and return a generic message.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every taskmesh error.
pub const ERROR_DOMAIN: &str = "taskmesh.dev";

/// INVALID_ARGUMENT with one `BadRequest` field violation per broken field.
pub fn invalid_argument(violations: Vec<(String, String)>) -> Status {
    let message = violations
        .iter()
        .map(|(field, description)| format!("{field}: {description}"))
        .collect::<Vec<_>>()
        .join("; ");
    let details = ErrorDetails::with_bad_request(
        violations
            .into_iter()
            .map(|(field, description)| tonic_types::FieldViolation::new(field, description))
            .collect::<Vec<_>>(),
    );
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// INVALID_ARGUMENT for a single field.
pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Status {
    invalid_argument(vec![(field.into(), description.into())])
}

/// A request field whose value breaks a rule. Code below the handlers returns it instead of a
/// status; it becomes INVALID_ARGUMENT with this one field violation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {description}")]
pub struct FieldViolation {
    /// The request field, `page_token`.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

impl From<FieldViolation> for Status {
    fn from(violation: FieldViolation) -> Self {
        invalid_field(violation.field, violation.description)
    }
}

/// INVALID_ARGUMENT for a required field left unset.
pub fn required(field: &str) -> Status {
    invalid_field(field, "is required")
}

/// A status with an `ErrorInfo` (reason in UPPER_SNAKE_CASE, domain `taskmesh.dev`).
pub fn with_reason(
    code: Code,
    message: impl Into<String>,
    reason: &str,
    metadata: HashMap<String, String>,
) -> Status {
    let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
    Status::with_error_details(code, message, details)
}

/// NOT_FOUND for a resource name.
pub fn not_found(resource: &str) -> Status {
    with_reason(
        Code::NotFound,
        format!("{resource} not found"),
        "RESOURCE_NOT_FOUND",
        HashMap::from([("resource".to_owned(), resource.to_owned())]),
    )
}

/// ABORTED for an etag that is no longer current; the current etag travels in the metadata.
pub fn etag_mismatch(resource: &str, current_etag: &str) -> Status {
    with_reason(
        Code::Aborted,
        format!(
            "{resource} was changed by someone else; fetch it again (current etag {current_etag})"
        ),
        "ETAG_MISMATCH",
        HashMap::from([
            ("resource".to_owned(), resource.to_owned()),
            ("current_etag".to_owned(), current_etag.to_owned()),
        ]),
    )
}

/// An error and all its causes on one line, `outer: inner: innermost`, each message once (a
/// transparent wrapper repeats its source's).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !chain.ends_with(&message) {
            chain.push_str(": ");
            chain.push_str(&message);
        }
        source = cause.source();
    }
    chain.replace(['\r', '\n'], " ")
}

/// INTERNAL without any detail for the client; the cause is logged with its chain.
pub fn internal(err: &(dyn std::error::Error + 'static)) -> Status {
    tracing::error!(error = %error_chain(err), "internal error");
    Status::internal("internal error")
}

/// A database failure: UNAVAILABLE when the database cannot be reached, INTERNAL otherwise; the
/// cause is logged, never sent. Takes the error by value to serve directly as a `map_err` function.
#[allow(clippy::needless_pass_by_value)]
pub fn db_error(err: sqlx::Error) -> Status {
    if crate::db::is_transient(&err) {
        tracing::error!(error = %error_chain(&err), "database unavailable");
        unavailable("the database")
    } else {
        internal(&err)
    }
}

/// UNAVAILABLE for a dependency that is down; the client may retry.
pub fn unavailable(what: &str) -> Status {
    Status::unavailable(format!("{what} is unavailable, retry later"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_each_field_violation() {
        let status = invalid_argument(vec![
            ("project.display_name".into(), "must not be empty".into()),
            ("page_size".into(), "must not be negative".into()),
        ]);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request");
        assert_eq!(bad.field_violations.len(), 2);
        assert_eq!(bad.field_violations[0].field, "project.display_name");
    }

    #[test]
    fn etag_mismatch_is_aborted_with_the_current_etag() {
        let status = etag_mismatch("projects/p", "7");
        assert_eq!(status.code(), Code::Aborted);
        let info = status
            .get_error_details()
            .error_info()
            .cloned()
            .expect("info");
        assert_eq!(info.reason, "ETAG_MISMATCH");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(info.metadata["current_etag"], "7");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = std::io::Error::other("relation \"projects\" does not exist");
        let status = internal(&err);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("relation"));
    }
}
