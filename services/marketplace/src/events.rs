//! What the marketplace learns from the bookings service's events: which bookings completed, and
//! by whom, so that their customers may review the listing (`completed_bookings`).

use async_nats::jetstream::Message;
use taskmesh_contracts::bookings_v1::BookingCompleted;
use taskmesh_events::consumer::{HandleError, Handler, Handling};
use taskmesh_events::decode_as;
use taskmesh_mesh::time::from_timestamp;

use crate::store::Store;

/// Durable consumer of `BOOKINGS`.
pub const BOOKINGS_DURABLE: &str = "marketplace-bookings";

/// Consumes `BOOKINGS`.
#[derive(Debug, Clone)]
pub struct BookingEvents {
    store: Store,
}

impl BookingEvents {
    /// Recording into `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn apply(&self, message: &Message) -> Result<(), HandleError> {
        let Some(event) = decode_as::<BookingCompleted>(message) else {
            return Ok(());
        };
        let booking = event
            .map_err(|e| HandleError::Retry(format!("undecodable: {e}")))?
            .booking
            .unwrap_or_default();
        if booking.name.is_empty() || booking.listing.is_empty() || booking.customer.is_empty() {
            // Nothing a review could name: acknowledged and dropped, with a trace.
            tracing::warn!(booking = %booking.name, "a completed booking without its listing or customer");
            return Ok(());
        }
        let completed = from_timestamp(booking.update_time).unwrap_or_else(chrono::Utc::now);
        self.store
            .booking_completed(
                &booking.name,
                &booking.listing,
                &booking.customer,
                completed,
            )
            .await?;
        Ok(())
    }
}

impl Handler for BookingEvents {
    fn handle<'a>(&'a self, message: &'a Message) -> Handling<'a> {
        Box::pin(self.apply(message))
    }
}
