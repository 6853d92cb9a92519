//! The events side of the projects service. It publishes to `PROJECTS` (through the outbox, from
//! the store, so that each event commits with its state change) and consumes identity's
//! `UserRegistered` and `RegistrationCancelled` for the registration saga ([`saga`]).

pub mod saga;

use taskmesh_events::consumer::ConsumerSpec;
use taskmesh_service::Wiring;

use crate::Projects;
use crate::store::Store;
use saga::PersonalOrganizations;

/// Declares the consumers of the service.
pub(crate) fn consume(wiring: &mut Wiring<Projects>, store: &Store) {
    let registrations = ConsumerSpec::new(
        wiring.stream_of("identity"),
        saga::DURABLE,
        &saga::subject(),
    );
    wiring.consume_with(registrations, PersonalOrganizations::new(store.clone()));
}
