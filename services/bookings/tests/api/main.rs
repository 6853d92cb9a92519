//! The bookings service's tests, on real PostgreSQL and NATS, beside a real marketplace app:
//! bookings under contention, reschedules, the booking's life and its events, slots and the
//! calendar feed.

mod calendar;
mod contention;
mod helpers;
mod life;
