//! The marketplace service's tests, on real PostgreSQL and NATS: the catalogue (providers,
//! categories, listings), search over a seeded catalogue, and reviews of bookings completed on the
//! bookings service's stream.

mod catalogue;
mod helpers;
mod reviews;
mod search;
