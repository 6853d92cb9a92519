//! The projects service: organizations, projects, boards with ordered columns, and members with
//! roles. State lives in the service's own PostgreSQL database; every change is published to the
//! `PROJECTS` JetStream stream through the transactional outbox.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod store;

pub use app::{App, Projects};
pub use config::{Config, Settings};
pub use error::Error;
