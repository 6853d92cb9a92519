//! PostgreSQL access of the tasks service: the event store (write model) and the projected read
//! model. Both live in the service's own database.

pub mod event_store;
pub mod read_model;

pub use taskmesh_mesh::status::db_error;
pub use taskmesh_mesh::time::from_timestamp as to_time;
