//! The scheduler service: one-shot, interval, cron and RFC 5545 schedules of a project, each
//! firing exactly once per occurrence across replicas and restarts, by claiming due schedules in
//! PostgreSQL and publishing `ScheduleTriggered` through the outbox. The tasks service turns the
//! firings of task templates into tasks (recurring tasks, scheduled jobs).

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod firer;
pub mod grpc;
pub mod store;

pub use app::{App, Scheduler};
pub use config::{Config, Settings};
pub use error::Error;
