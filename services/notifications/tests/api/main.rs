//! The notifications service on real PostgreSQL, NATS, OpenBao and SMTP, fed by real projects and
//! tasks services and by events published as the other services publish them.

mod crash;
mod delivery;
mod helpers;
mod inbox;
mod rules;
