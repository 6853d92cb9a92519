//! Service tests of the scheduler: the real app against the local PostgreSQL and OpenBao, a
//! private NATS server and a projects app, firings read back from the `SCHEDULER` stream.

mod firing;
mod helpers;
mod reminders;
mod schedules;
