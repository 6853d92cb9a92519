//! The projects side of the registration saga: a durable consumer of identity's events that creates
//! the user's personal organization on UserRegistered and removes it again on
//! RegistrationCancelled (a registration that timed out after this step ran late); see
//! [`crate::store::personal`]. Both arrive on one consumer, in the order identity published them.

use std::future::Future;
use std::pin::Pin;

use async_nats::jetstream::Message;
use taskmesh_contracts::identity_v1::{RegistrationCancelled, UserRegistered};
use taskmesh_events::consumer::{HandleError, Handler};
use taskmesh_events::{caused_context, decode_as};

use crate::store::Store;
use crate::store::personal::PersonalOutcome;

/// Durable consumer name.
pub const DURABLE: &str = "projects-registration";
/// What it reads: identity's events (it acts on UserRegistered and RegistrationCancelled).
pub fn subject() -> String {
    "taskmesh.identity.v1.>".to_owned()
}

/// Creates personal organizations.
#[derive(Debug, Clone)]
pub struct PersonalOrganizations {
    store: Store,
}

impl PersonalOrganizations {
    /// A saga step writing through `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn apply(&self, message: &Message) -> Result<(), HandleError> {
        if let Some(event) = decode_as::<RegistrationCancelled>(message) {
            let event = event.map_err(|e| {
                HandleError::Retry(format!("undecodable RegistrationCancelled: {e}"))
            })?;
            let Some(user) = event.user else {
                return Ok(());
            };
            let id = user.name.trim_start_matches("users/");
            let mut context = caused_context(message);
            context.caller = user.name.clone();
            if let Some(organization) = self
                .store
                .remove_personal_organization(&context, id)
                .await?
            {
                tracing::warn!(user = %user.name, %organization, reason = %event.reason, "registration cancelled; personal organization removed");
            }
            return Ok(());
        }
        let Some(event) = decode_as::<UserRegistered>(message) else {
            return Ok(());
        };
        let event =
            event.map_err(|e| HandleError::Retry(format!("undecodable UserRegistered: {e}")))?;
        let Some(user) = event.user else {
            return Ok(());
        };
        let id = user.name.trim_start_matches("users/").to_owned();
        let mut context = caused_context(message);
        context.caller = user.name.clone();
        let outcome = self
            .store
            .create_personal_organization(&context, &id, &id)
            .await?;
        match outcome {
            PersonalOutcome::Created => {
                tracing::info!(user = %user.name, "personal organization created")
            }
            PersonalOutcome::AlreadyDone => {}
            PersonalOutcome::Failed(reason) => {
                tracing::warn!(user = %user.name, %reason, "personal organization refused");
            }
        }
        Ok(())
    }
}

impl Handler for PersonalOrganizations {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>> {
        Box::pin(self.apply(message))
    }
}
