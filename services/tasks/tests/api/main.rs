//! Service tests of the tasks service: the real tasks app and the real projects app (each with its
//! own fresh database) on 127.0.0.1:0, against the local PostgreSQL, NATS JetStream and OpenBao.

mod bola;
mod children;
mod heads;
mod helpers;
mod jobs;
mod nats_outage;
mod paging;
mod project_cache;
mod rebuild;
mod tasks;
