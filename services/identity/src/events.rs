//! The events side of the identity service. It publishes to `IDENTITY` (through the outbox, from
//! the store) and consumes `PROJECTS` for its side of the registration saga ([`saga`]).

pub mod saga;

use taskmesh_service::Wiring;

use crate::Identity;
use crate::store::Store;
use saga::{DURABLE, RegistrationSaga};

/// Declares the consumers of the service.
pub(crate) fn consume(wiring: &mut Wiring<Identity>, store: &Store) {
    wiring.consume("projects", DURABLE, RegistrationSaga::new(store.clone()));
}
