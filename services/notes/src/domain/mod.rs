//! What notes are, without I/O: Markdown rendered to safe HTML ([`render`]) and the title a quick
//! capture derives from a body ([`capture`]), and what an uploaded file is ([`sniff`]).

pub mod capture;
pub mod render;
pub mod sniff;
