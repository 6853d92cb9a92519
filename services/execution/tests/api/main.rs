//! Service tests of the execution service: the real app against the local PostgreSQL and OpenBao
//! and a private NATS server, task events published on `TASKS` as the tasks service does, and jobs
//! calling an HTTP server the test runs.

mod crash;
mod helpers;
mod jobs;
mod watch;
