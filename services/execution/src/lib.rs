//! The execution service: runs the jobs tasks carry (web crawls and HTTP requests) with per-attempt
//! timeouts, retries with exponential backoff, cancellation, and leases that keep a crashed worker's
//! execution from running forever or twice at once. Jobs arrive as task events on `TASKS`;
//! progress and outcomes leave as events on `EXECUTION`.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod jobs;
pub mod store;
pub mod worker;

pub use app::{App, Execution};
pub use config::{Config, Settings};
pub use error::Error;
