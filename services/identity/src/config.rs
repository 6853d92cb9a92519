//! The identity service's own settings: the `identity` table (the runtime's settings come from the
//! kit).

use serde::{Deserialize, Serialize};
use taskmesh_mesh::config::ConfigError;

/// Token lifetimes and key reloading.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdentitySettings {
    /// Access token lifetime in seconds (about 15 minutes).
    pub access_token_ttl_secs: i64,
    /// Refresh token lifetime in seconds.
    pub refresh_token_ttl_secs: i64,
    /// How often the signing keys are read again from Vault, in milliseconds.
    pub key_reload_ms: u64,
    /// Wrong passwords one account may get within `failed_sign_in_window_secs` before its
    /// sign-ins are refused for the rest of the window.
    pub failed_sign_ins_per_account: usize,
    /// The window of `failed_sign_ins_per_account`, in seconds.
    pub failed_sign_in_window_secs: u64,
    /// How long a registration may stay pending (waiting for its personal organization) before
    /// it is cancelled, freeing the username and email, in seconds.
    pub registration_timeout_secs: u64,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            key_reload_ms: 30_000,
            failed_sign_ins_per_account: 10,
            failed_sign_in_window_secs: 900,
            registration_timeout_secs: 600,
        }
    }
}

/// The service's configuration: the runtime's settings plus [`Settings`].
pub type Config = taskmesh_service::Config<crate::Identity>;

/// The tables only the identity service reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Settings {
    /// Token lifetimes and key reloading.
    pub identity: IdentitySettings,
}

impl taskmesh_service::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        let identity = &self.identity;
        for (key, value) in [
            (
                "identity.access_token_ttl_secs",
                identity.access_token_ttl_secs,
            ),
            (
                "identity.refresh_token_ttl_secs",
                identity.refresh_token_ttl_secs,
            ),
        ] {
            if value < 1 {
                return Err(ConfigError::Invalid {
                    key: key.to_owned(),
                    message: "must be at least 1".to_owned(),
                });
            }
        }
        if !(1..=7 * 24 * 3600).contains(&identity.registration_timeout_secs) {
            return Err(ConfigError::Invalid {
                key: "identity.registration_timeout_secs".to_owned(),
                message: "must be 1 to 604800 (a week)".to_owned(),
            });
        }
        if identity.key_reload_ms < 10 {
            return Err(ConfigError::Invalid {
                key: "identity.key_reload_ms".to_owned(),
                message: "must be at least 10".to_owned(),
            });
        }
        Ok(())
    }
}
