//! The notifications service: each user's inbox, fed by the rules in [`domain::rules`] from the
//! other services' events, with a real-time stream resumable from a cursor, and delivery of each
//! notification by email (SMTP) and to the project's signed webhooks, each channel once per
//! notification. It owns the inboxes, settings, webhooks and deliveries; what it knows of users,
//! projects and tasks is a read model of their owners' events.

pub mod app;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod store;

pub use app::{App, Notifications};
pub use config::{Config, Settings};
pub use error::Error;
