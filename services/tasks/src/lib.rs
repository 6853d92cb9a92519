//! The tasks service: event-sourced tasks with comments, work logs and activity. The write model is
//! an append-only event store in the service's PostgreSQL database; every event goes to the `TASKS`
//! stream through the outbox; a projector consuming that stream keeps the read model behind
//! ListTasks and ListTaskActivity. Column existence and membership come from the projects service
//! over gRPC. See docs/tasks.md for the consistency model.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod store;

pub use app::{App, Tasks};
pub use config::{Config, Settings};
pub use error::Error;
