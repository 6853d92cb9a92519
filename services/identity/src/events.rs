//! The events side of the identity service. It publishes to `IDENTITY` (through the outbox, from
//! the store) and consumes `PROJECTS` for its side of the registration saga ([`crate::saga`]).

use taskmesh_service::Wiring;

use crate::Identity;
use crate::saga::{DURABLE, RegistrationSaga};
use crate::store::Store;

/// Declares the consumers of the service.
pub(crate) fn consume(wiring: &mut Wiring<Identity>, store: &Store) {
    wiring.consume("projects", DURABLE, RegistrationSaga::new(store.clone()));
}
