//! Clients of taskmesh services for other services, over gRPC only: [`projects`] (who is a member
//! with which role, which board columns exist), [`tasks`] (whether the caller can read a task) and
//! [`identity`] (the signing keys' JWKS and API-key resolution behind every service's
//! authentication). Calls carry the caller's request id,
//! correlation id, trace context and deadline.

pub mod identity;
pub mod marketplace;
pub mod project_cache;
pub mod projects;
pub mod tasks;

pub use identity::IdentityClient;
pub use marketplace::{Bookable, MarketplaceClient, MarketplaceEndpoint};
pub use project_cache::ProjectCache;
pub use projects::{Access, EndpointError, ProjectsClient, ProjectsEndpoint};
pub use tasks::{TasksClient, TasksEndpoint, TasksEndpointError};

use std::time::Duration;

use taskmesh_mesh::context::{CORRELATION_ID_HEADER, CallContext, REQUEST_ID_HEADER};
use tonic::Request;

/// A request carrying `message` for the same user as `context`, with its credential (so the same
/// scope), request and correlation ids, trace context, and the shorter of its deadline and
/// `timeout`.
pub(crate) fn forwarded<T>(context: &CallContext, timeout: Duration, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let timeout = context
        .remaining()
        .map_or(timeout, |left| left.min(timeout));
    request.set_timeout(timeout);
    let metadata = request.metadata_mut();
    for (key, value) in [
        (REQUEST_ID_HEADER, context.request_id.as_str()),
        (CORRELATION_ID_HEADER, context.correlation_id.as_str()),
        ("traceparent", context.traceparent.as_str()),
    ] {
        if let Ok(value) = value.parse() {
            metadata.insert(key, value);
        }
    }
    if let Some((key, value)) = context.credential.as_ref().map(|c| c.header())
        && let Ok(value) = value.parse()
    {
        metadata.insert(key, value);
    }
    request
}
