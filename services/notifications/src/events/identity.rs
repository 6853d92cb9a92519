//! Users' addresses and names, from the identity service's events: where emails go and how actors
//! are named.

use std::future::Future;
use std::pin::Pin;

use async_nats::jetstream::Message;
use chrono::Utc;
use taskmesh_contracts::identity_v1::{
    RegistrationCancelled, UserActivated, UserRegistered, UserUpdated,
};
use taskmesh_events::consumer::{HandleError, Handler};
use taskmesh_events::decode_as;

use super::{Deliverer, undecodable};
use crate::domain::clock;
use crate::store::facts;

/// Durable consumer name.
pub const DURABLE: &str = "notifications-identity";

/// Consumes `IDENTITY`.
#[derive(Debug, Clone)]
pub struct IdentityEvents {
    deliverer: Deliverer,
}

impl IdentityEvents {
    /// A consumer keeping users through `deliverer`'s store.
    pub fn new(deliverer: Deliverer) -> Self {
        Self { deliverer }
    }

    async fn apply(&self, message: &Message) -> Result<(), HandleError> {
        let user = if let Some(event) = decode_as::<UserRegistered>(message) {
            event.map_err(|e| undecodable(&e))?.user
        } else if let Some(event) = decode_as::<UserActivated>(message) {
            event.map_err(|e| undecodable(&e))?.user
        } else if let Some(event) = decode_as::<UserUpdated>(message) {
            event.map_err(|e| undecodable(&e))?.user
        } else if let Some(event) = decode_as::<RegistrationCancelled>(message) {
            let user = event.map_err(|e| undecodable(&e))?.user.unwrap_or_default();
            let Some(mut claimed) = self.deliverer.claim(DURABLE, message).await? else {
                return Ok(());
            };
            facts::forget_address(claimed.conn(), &user.name).await?;
            return self.deliverer.finish(claimed, &[]).await;
        } else {
            return Ok(());
        };
        let user = user.unwrap_or_default();
        let Some(mut claimed) = self.deliverer.claim(DURABLE, message).await? else {
            return Ok(());
        };
        let first_agenda = clock::next_local(
            Utc::now(),
            chrono_tz::Tz::UTC,
            self.deliverer.making.agenda_time,
        );
        facts::save_user(
            claimed.conn(),
            &user.name,
            &user.email,
            &user.display_name,
            first_agenda,
        )
        .await?;
        self.deliverer.finish(claimed, &[]).await
    }
}

impl Handler for IdentityEvents {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>> {
        Box::pin(self.apply(message))
    }
}
