//! The load tool's parts: the [`engine`] that applies load and records latencies, the
//! [`floors`] measured in the same run, and the [`platform`] under load with its four ways in.

pub mod engine;
pub mod floors;
pub mod lag;
pub mod platform;
pub mod rss;
