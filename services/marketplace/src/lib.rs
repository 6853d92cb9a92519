//! The marketplace service: providers (users who offer services), a category tree the platform's
//! operators keep, listings with full-text search, filters, sort orders and category facets, and
//! reviews by customers whose booking of a listing completed, with ratings kept as a projection.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod store;

pub use app::{App, Marketplace};
pub use config::{Config, Settings};
pub use error::Error;
