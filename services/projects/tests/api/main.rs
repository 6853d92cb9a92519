//! Service tests of the projects service: the real app on 127.0.0.1:0 against the real local
//! PostgreSQL (a fresh database and login role per test), NATS JetStream and OpenBao started by
//! `make test` (or `make up`).

mod boards;
mod commands;
mod events;
mod helpers;
mod members;
mod organizations;
mod projects;
mod startup;
