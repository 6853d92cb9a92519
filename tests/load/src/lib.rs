//! The load tool's parts: the [`engine`] that applies load and records latencies, the
//! [`floors`] measured in the same run, the [`platform`] under load with its four ways in, and the
//! scheduler's [`fire_lag`], and the notifications service's [`notify_lag`].

pub mod engine;
pub mod fire_lag;
pub mod floors;
pub mod lag;
pub mod notify_lag;
pub mod platform;
pub mod rss;
