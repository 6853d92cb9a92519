//! Identity's side of the registration saga: a durable consumer of the `PROJECTS` stream that
//! activates a pending user on PersonalOrganizationCreated and compensates (removes the pending
//! registration) on PersonalOrganizationFailed. Both steps only act on PENDING users, so
//! redeliveries change nothing.

use std::future::Future;
use std::pin::Pin;

use async_nats::jetstream::Message;
use taskmesh_contracts::projects_v1::{PersonalOrganizationCreated, PersonalOrganizationFailed};
use taskmesh_events::consumer::{HandleError, Handler};
use taskmesh_events::{caused_context, decode_as};

use crate::store::Store;

/// Durable consumer name.
pub const DURABLE: &str = "identity-registration";

/// Applies the projects step's outcome.
#[derive(Debug, Clone)]
pub struct RegistrationSaga {
    store: Store,
}

impl RegistrationSaga {
    /// A saga step writing through `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn apply(&self, message: &Message) -> Result<(), HandleError> {
        let context = caused_context(message);
        let undecodable = |e: prost::DecodeError| HandleError::Retry(format!("undecodable: {e}"));
        if let Some(event) = decode_as::<PersonalOrganizationCreated>(message) {
            let event = event.map_err(undecodable)?;
            let user = event.user.trim_start_matches("users/");
            let organization = event.organization.map(|o| o.name).unwrap_or_default();
            if organization.is_empty() {
                return Err(HandleError::Retry(format!(
                    "PersonalOrganizationCreated for {user} without its organization"
                )));
            }
            if self.store.activate(&context, user, &organization).await? {
                tracing::info!(%user, "registration completed");
            }
        } else if let Some(event) = decode_as::<PersonalOrganizationFailed>(message) {
            let event = event.map_err(undecodable)?;
            let user = event.user.trim_start_matches("users/");
            if self
                .store
                .cancel_registration(&context, user, &event.reason)
                .await?
            {
                tracing::warn!(%user, reason = %event.reason, "registration rolled back");
            }
        }
        Ok(())
    }
}

impl Handler for RegistrationSaga {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>> {
        Box::pin(self.apply(message))
    }
}
