//! The tasks service's errors: one enum for what its store, projectors and start-up report, and one
//! mapping to a gRPC status. Causes are logged, never sent to a client.

use taskmesh_clients::projects::EndpointError;
use tonic::Status;

use crate::domain::events::DecodeError;

/// What went wrong inside the tasks service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed.
    #[error("database")]
    Database(#[from] sqlx::Error),
    /// A stored event does not decode (the event store is damaged).
    #[error("a stored event does not decode")]
    CorruptEvent(#[source] DecodeError),
    /// The projects endpoint is malformed.
    #[error(transparent)]
    Projects(#[from] EndpointError),
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Database(err) => taskmesh_mesh::status::db_error(err),
            other => taskmesh_mesh::status::internal(&other),
        }
    }
}
