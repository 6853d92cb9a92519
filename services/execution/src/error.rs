//! The execution service's errors.

use taskmesh_clients::projects::EndpointError;

/// Why the execution service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The projects endpoint is malformed.
    #[error(transparent)]
    Projects(#[from] EndpointError),
}
