//! The bookings service's three gRPC services. Each call parses the names it is given, decides
//! who the caller is to the resource (its provider, its customer, or nobody: NOT_FOUND), checks
//! the rules of the domain, then asks the store.

mod availability;
mod bookings;
mod calendar;

pub use availability::AvailabilityServiceImpl;
pub use bookings::BookingsService;
pub use calendar::CalendarServiceImpl;

use taskmesh_contracts::bookings_v1::Booking;
use taskmesh_mesh::time::to_timestamp;

use crate::store::bookings::BookingRow;

/// The user id of the caller (`users/{user}`).
fn caller_id(caller: &str) -> &str {
    caller.strip_prefix("users/").unwrap_or(caller)
}

/// As the API shows a stored booking.
fn booking_proto(row: &BookingRow) -> Booking {
    Booking {
        name: row.name(),
        listing: row.listing.clone(),
        customer: row.customer.clone(),
        start_time: Some(to_timestamp(row.start_time)),
        end_time: Some(to_timestamp(row.end_time)),
        state: i32::from(row.state),
        sequence: row.sequence,
        create_time: Some(to_timestamp(row.create_time)),
        update_time: Some(to_timestamp(row.update_time)),
        cancel_reason: row.cancel_reason.clone(),
        cancelled_by: row.cancelled_by.clone(),
        etag: row.etag(),
        note: row.note.clone(),
    }
}
