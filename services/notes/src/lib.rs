//! The notes service: personal and project notes in Markdown, linked to tasks and projects,
//! shared with other users, searched in full text, with attachments.
//!
//! Work in progress: only the domain (rendering, quick capture) and the store (notes, shares,
//! members, access, search) exist so far; the service on the
//! kit (contracts in `proto/taskmesh/notes/v1/`, store, gRPC, events) is to come.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod store;

pub use app::{App, Notes};
pub use config::{Config, Settings};
pub use error::Error;
