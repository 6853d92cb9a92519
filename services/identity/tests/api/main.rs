//! The identity service against the real local stack: a private NATS server, identity and the
//! projects service (for the registration saga), each with its own database and Vault secrets.

mod api_keys;
mod helpers;
mod keys;
mod saga;
mod sessions;
