//! What notes are, without I/O: Markdown rendered to safe HTML ([`render`]) and the title a quick
//! capture derives from a body ([`capture`]).

pub mod capture;
pub mod render;
