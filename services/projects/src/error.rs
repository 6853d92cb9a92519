//! The projects service's errors.

/// Why the projects service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {}
