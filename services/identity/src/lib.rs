//! taskmesh identity service: users with argon2id passwords, sessions of EdDSA access tokens and
//! rotating refresh tokens, API keys, the JWKS of the signing keys kept in Vault, and identity's
//! side of the registration saga.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod keys;
pub mod passwords;
pub mod store;

pub use app::{App, Identity};
pub use config::{Config, Settings};
pub use error::Error;
