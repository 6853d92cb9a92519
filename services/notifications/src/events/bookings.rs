//! Notifications of bookings, from the bookings service's events: both sides of a request, a
//! cancellation and a reschedule, the customer of a confirmation, and on completion a review asked
//! of the customer.

use async_nats::jetstream::Message;
use taskmesh_contracts::bookings_v1::{
    Booking, BookingCancelled, BookingCompleted, BookingConfirmed, BookingRequested,
    BookingRescheduled,
};
use taskmesh_events::consumer::{HandleError, Handling};
use taskmesh_events::decode_as;
use taskmesh_mesh::time::from_timestamp;

use super::{Batch, Rule, undecodable};
use crate::domain::rules::{self, BookingFacts, BookingStep};

/// Consumes `BOOKINGS`.
#[derive(Debug, Clone)]
pub struct BookingEvents;

fn facts(booking: &Booking) -> BookingFacts {
    let provider = booking
        .name
        .strip_prefix("providers/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    BookingFacts {
        booking: booking.name.clone(),
        listing: booking.listing.clone(),
        provider: format!("users/{provider}"),
        customer: booking.customer.clone(),
        when: from_timestamp(booking.start_time).map_or_else(
            || "a time to be fixed".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
    }
}

/// The booking and the step of `message`, if it is a booking event.
fn step(message: &Message) -> Result<Option<(Booking, BookingStep)>, HandleError> {
    macro_rules! read {
        ($event:ty) => {
            decode_as::<$event>(message)
                .map(|e| e.map(|e| e.booking.unwrap_or_default()))
                .transpose()
                .map_err(|e| undecodable(&e))?
        };
    }
    if let Some(booking) = read!(BookingRequested) {
        return Ok(Some((booking, BookingStep::Requested)));
    }
    if let Some(booking) = read!(BookingConfirmed) {
        return Ok(Some((booking, BookingStep::Confirmed)));
    }
    if let Some(booking) = read!(BookingCancelled) {
        let step = BookingStep::Cancelled {
            reason: booking.cancel_reason.clone(),
            by: booking.cancelled_by.clone(),
        };
        return Ok(Some((booking, step)));
    }
    if let Some(booking) = read!(BookingRescheduled) {
        return Ok(Some((booking, BookingStep::Rescheduled)));
    }
    if let Some(booking) = read!(BookingCompleted) {
        return Ok(Some((booking, BookingStep::Completed)));
    }
    Ok(None)
}

impl BookingEvents {
    async fn handle_event(&self, batch: &mut Batch, message: &Message) -> Result<(), HandleError> {
        let Some((booking, step)) = step(message)? else {
            return Ok(());
        };
        let Some(event_id) = batch.claim(message)? else {
            return Ok(());
        };
        let drafts = rules::booking(&facts(&booking), &step);
        batch.notify(&event_id, &drafts);
        Ok(())
    }
}

impl Rule for BookingEvents {
    const CONTEXT: &'static str = "bookings";
    const DURABLE: &'static str = "notifications-bookings";

    fn apply<'a>(&'a self, batch: &'a mut Batch, message: &'a Message) -> Handling<'a> {
        Box::pin(self.handle_event(batch, message))
    }
}
