//! The identity service's errors.

use crate::keys::KeyError;

/// Why the identity service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The signing keys in Vault are missing or unusable.
    #[error("signing keys")]
    Keys(#[from] KeyError),
    /// Vault refused to hand out the signing keys.
    #[error("reading the signing keys from Vault")]
    Vault(#[from] taskmesh_mesh::vault::VaultError),
}
