//! The notes service's tests, on real PostgreSQL and NATS: the store, the gRPC service (notes,
//! attachments) and the consumers of the projects and tasks services' events.

mod attachments;
mod helpers;
mod service;
mod store;
