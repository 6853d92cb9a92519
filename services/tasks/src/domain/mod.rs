//! The tasks domain: names, value rules, the events of a task and the fold that turns them into
//! its state.

pub mod aggregate;
pub mod events;
pub mod names;
pub mod rules;
pub mod secrets;
