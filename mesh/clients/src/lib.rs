//! Clients of taskmesh services for other services, over gRPC only: [`projects`] (who is a member
//! with which role, which board columns exist) and [`identity`] (the signing keys' JWKS and API-key
//! resolution behind every service's authentication). Calls carry the caller's request id,
//! correlation id, trace context and deadline.

pub mod identity;
pub mod project_cache;
pub mod projects;

pub use identity::IdentityClient;
pub use project_cache::ProjectCache;
pub use projects::{Access, EndpointError, ProjectsClient, ProjectsEndpoint};
