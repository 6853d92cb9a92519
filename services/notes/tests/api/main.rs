//! The notes service's tests, on real PostgreSQL. (Work in progress: the store's so far.)

mod service;
mod store;
