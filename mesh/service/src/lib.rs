//! The service kit. A taskmesh service *declares* itself by implementing [`Service`] (its name and
//! ports, its settings, its migrations, its extra commands, and in [`Service::build`] the gRPC
//! services, consumers and background work it adds to a [`Wiring`]); the kit runs the rest of its
//! life the same way for every service:
//!
//! 1. command line ([`cli`]): `--config FILE`, `--help`, `dead-letters`, the service's own commands;
//! 2. layered configuration ([`Config`]): exit 64 naming the key of a bad value;
//! 3. telemetry, then Vault, PostgreSQL with the kit's and the service's migrations, NATS;
//! 4. the outbox relay to the service's own stream, its consumers and background tasks;
//! 5. the gRPC server with health, reflection and the admin port ([`taskmesh_mesh::MeshServer`]);
//! 6. on SIGTERM/SIGINT an ordered drain: calls, then consumers and background tasks, then the
//!    outbox, then NATS and the pool. A background task that fails stops the process (exit 1), so
//!    that its supervisor restarts it instead of leaving it half alive.
//!
//! A service's `main.rs` is `taskmesh_service::main::<MyService>()`. Tests build the same
//! [`App`] with [`App::build`] on ephemeral ports and run it with any shutdown future.

/// Every taskmesh process allocates with mimalloc: it hands memory freed after a burst back to the
/// system within milliseconds, where the C library's allocator keeps it in per-thread arenas (a
/// service that hashed passwords or served a load test held on to tens of megabytes), and it is
/// faster on the small allocations a request makes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod app;
mod background;
pub mod cli;
mod config;
mod declaration;
mod error;

pub use app::App;
pub use background::Stop;
pub use cli::{NoCommand, Process, main, process_main};
pub use config::{NoSettings, Settings};
pub use declaration::{CommandContext, Config, Service, Wiring};
pub use error::{BoxError, KitError, chain};
