//! PostgreSQL access of the tasks service: the event store (write model) and the projected read
//! model. Both live in the service's own database.

pub mod event_store;
pub mod read_model;

use taskmesh_mesh::status;
use tonic::Status;

/// Any database failure: logged with its cause, reported without it. Takes the error by value to
/// serve directly as a `map_err` function.
#[allow(clippy::needless_pass_by_value)]
pub fn db_error(err: sqlx::Error) -> Status {
    match &err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            tracing::error!(error = %err, "database unavailable");
            status::unavailable("the database")
        }
        _ => status::internal(&err),
    }
}

/// A protobuf timestamp as a database timestamp.
pub fn to_time(ts: Option<prost_types::Timestamp>) -> Option<chrono::DateTime<chrono::Utc>> {
    ts.and_then(|t| {
        chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
    })
}
