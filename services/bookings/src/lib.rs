//! The bookings service: each provider's availability (weekly hours on its own clock,
//! exceptions, buffer, horizon, notice), the free slots of a listing, bookings that PostgreSQL
//! keeps from overlapping, their life (confirm, cancel, reschedule, complete) told as events, and
//! iCalendar feeds behind secret, rotatable addresses holding a user's bookings and the tasks
//! with due times they are assigned (learned from the tasks service's events).

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod store;

pub use app::{App, Bookings};
pub use config::{Config, Settings};
pub use error::Error;
