//! taskmesh's service runtime. A service binary loads its [`config`], logs in to Vault
//! ([`vault`]), connects PostgreSQL ([`db`]), starts [`telemetry`], builds its routes and hands them
//! to [`server::MeshServer`], which adds health, reflection, ids, deadlines, metrics, the admin port
//! and graceful shutdown. [`validate`] checks every request against its contract's rules.
//! [`status`] and [`aip`] keep errors and list semantics the same everywhere.

pub mod admin;
pub mod aip;
pub mod auth;
pub mod codec;
pub mod config;
pub mod context;
pub mod db;
pub mod egress;
pub mod layer;
pub mod metrics;
pub mod names;
pub mod sealed;
pub mod server;
pub mod shutdown;
pub mod status;
pub mod telemetry;
pub mod time;
pub mod validate;
pub mod vault;

pub use admin::Readiness;
pub use config::{ConfigLayers, EXIT_CONFIG, MeshConfig};
pub use context::CallContext;
pub use metrics::Metrics;
pub use server::MeshServer;
pub use vault::{DatabaseCredentials, NatsCredentials, VaultSession};
