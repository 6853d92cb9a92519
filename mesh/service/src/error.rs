//! How the kit reports what went wrong: [`KitError`] for a service's life, [`BoxError`] for what
//! background tasks and commands return, and [`chain`] to print an error with its causes.

use taskmesh_events::startup::StartupError;
use taskmesh_mesh::server::ServerError;

/// Any error, boxed (what background tasks and service commands report).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a service could not start or stopped with an error. Each is one line without secrets; the
/// causes follow in the chain ([`std::error::Error::source`]).
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// Vault, PostgreSQL or NATS could not be opened.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The service's own build step failed.
    #[error("building the service failed")]
    Build(#[source] BoxError),
    /// The service declared no gRPC service to serve.
    #[error("the service declares no gRPC service")]
    NoServices,
    /// The server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A background task ended before the drain, or failed during it.
    #[error("background task `{task}` {why}")]
    Background {
        /// The task's name.
        task: String,
        /// What happened to it.
        why: String,
    },
}

/// `error: cause: cause ...` on one line, each message once.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    taskmesh_mesh::status::error_chain(error)
}
