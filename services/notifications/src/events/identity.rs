//! Users' addresses and names, from the identity service's events: where emails go and how actors
//! are named.

use async_nats::jetstream::Message;
use chrono::Utc;
use taskmesh_contracts::identity_v1::{
    RegistrationCancelled, UserActivated, UserRegistered, UserUpdated,
};
use taskmesh_events::consumer::{HandleError, Handling};
use taskmesh_events::decode_as;

use super::{Batch, Rule, undecodable};
use crate::domain::clock;
use crate::store::facts;
use crate::store::inbox::Making;

/// Consumes `IDENTITY`.
#[derive(Debug, Clone)]
pub struct IdentityEvents {
    making: Making,
}

impl IdentityEvents {
    /// A consumer keeping users, their first agenda at `making`'s agenda time.
    pub fn new(making: Making) -> Self {
        Self { making }
    }

    async fn handle_event(&self, batch: &mut Batch, message: &Message) -> Result<(), HandleError> {
        let user = if let Some(event) = decode_as::<UserRegistered>(message) {
            event.map_err(|e| undecodable(&e))?.user
        } else if let Some(event) = decode_as::<UserActivated>(message) {
            event.map_err(|e| undecodable(&e))?.user
        } else if let Some(event) = decode_as::<UserUpdated>(message) {
            event.map_err(|e| undecodable(&e))?.user
        } else if let Some(event) = decode_as::<RegistrationCancelled>(message) {
            let user = event.map_err(|e| undecodable(&e))?.user.unwrap_or_default();
            if batch.claim(message)?.is_none() {
                return Ok(());
            }
            facts::forget_address(batch.conn(), &user.name).await?;
            return Ok(());
        } else {
            return Ok(());
        };
        let user = user.unwrap_or_default();
        if batch.claim(message)?.is_none() {
            return Ok(());
        }
        let first_agenda =
            clock::next_local(Utc::now(), chrono_tz::Tz::UTC, self.making.agenda_time);
        facts::save_user(
            batch.conn(),
            &user.name,
            &user.email,
            &user.display_name,
            first_agenda,
        )
        .await?;
        Ok(())
    }
}

impl Rule for IdentityEvents {
    const CONTEXT: &'static str = "identity";
    const DURABLE: &'static str = "notifications-identity";

    fn apply<'a>(&'a self, batch: &'a mut Batch, message: &'a Message) -> Handling<'a> {
        Box::pin(self.handle_event(batch, message))
    }
}
