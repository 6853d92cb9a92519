//! Vault bootstrap: log in (token or AppRole) and read the service's secrets from KV version 2 before
//! anything else connects. Every failure is one line that says what to fix: Vault unreachable, sealed,
//! login refused, or a secret missing.

use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use vaultrs::client::{Client, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use crate::config::{VaultAuth, VaultConfig};

/// Why the Vault bootstrap failed. Each message fits on one line and carries no secret.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No answer from the address.
    #[error("vault unreachable at {addr}: {reason}")]
    Unreachable {
        /// The configured address.
        addr: String,
        /// The transport error.
        reason: String,
    },
    /// Vault answered but is sealed or not initialized.
    #[error("vault at {addr} is {state}; unseal it and retry")]
    NotServing {
        /// The configured address.
        addr: String,
        /// `sealed`, `uninitialized`, ...
        state: String,
    },
    /// The login was refused.
    #[error("vault login ({method}) at {addr} failed: {reason}")]
    Login {
        /// The configured address.
        addr: String,
        /// `token` or `approle`.
        method: &'static str,
        /// What Vault said.
        reason: String,
    },
    /// A credential file could not be read.
    #[error("cannot read {what} from {path}: {reason}")]
    CredentialFile {
        /// Which credential.
        what: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The secret does not exist or is not readable with the service's policy.
    #[error("vault secret {mount}/{path} is missing or not readable by this service ({reason})")]
    MissingSecret {
        /// KV mount.
        mount: String,
        /// Path in the mount.
        path: String,
        /// What Vault said.
        reason: String,
    },
    /// The secret exists but lacks a field or has the wrong shape.
    #[error("vault secret {mount}/{path} is malformed: {reason}")]
    MalformedSecret {
        /// KV mount.
        mount: String,
        /// Path in the mount.
        path: String,
        /// Which field is wrong.
        reason: String,
    },
    /// Any other client failure.
    #[error("vault request to {addr} failed: {reason}")]
    Other {
        /// The configured address.
        addr: String,
        /// Description.
        reason: String,
    },
}

/// The database login a service reads from `<secret_path>/database`.
#[derive(Clone, Deserialize)]
pub struct DatabaseCredentials {
    /// Login role.
    pub username: String,
    /// Its password; never logged.
    pub password: SecretString,
    /// Overrides `database.name` when set.
    #[serde(default)]
    pub database: Option<String>,
}

impl std::fmt::Debug for DatabaseCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseCredentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("database", &self.database)
            .finish()
    }
}

/// The NATS login a service reads from `<secret_path>/nats`.
#[derive(Clone, Deserialize)]
pub struct NatsCredentials {
    /// The service's NATS user.
    pub username: String,
    /// Its password; never logged.
    pub password: SecretString,
}

impl std::fmt::Debug for NatsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsCredentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// A logged-in Vault client scoped to one service's secrets. [`keep_alive`](Self::keep_alive)
/// renews its token before it expires and logs in again when renewal fails.
pub struct VaultSession {
    client: tokio::sync::RwLock<VaultClient>,
    /// For the seal-status probe; built once, reused by every readiness check.
    probe: reqwest::Client,
    config: VaultConfig,
}

impl std::fmt::Debug for VaultSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSession")
            .field("addr", &self.config.addr)
            .finish_non_exhaustive()
    }
}

impl VaultSession {
    /// Checks that Vault is up and unsealed, then logs in with the configured method.
    pub async fn login(config: &VaultConfig) -> Result<Self, VaultError> {
        let addr = config.addr.clone();
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|e| VaultError::Other {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        match seal_status(&probe, &addr).await? {
            SealState::Unsealed => {}
            SealState::Sealed => return Err(not_serving(&addr, "sealed")),
            SealState::Uninitialized => return Err(not_serving(&addr, "uninitialized")),
        }
        let client = authenticate(config).await?;
        Ok(Self {
            client: tokio::sync::RwLock::new(client),
            probe,
            config: config.clone(),
        })
    }

    /// Keeps the token alive until `stop` completes: renews it when two thirds of its time to live
    /// have passed, and logs in again (AppRole, or the token file read anew) when renewal fails or
    /// the token cannot be renewed for long enough. A token that never expires is left alone.
    /// Returns an error only when logging in again fails too; the service then stops, and its
    /// supervisor starts it with a fresh login.
    pub async fn keep_alive(
        &self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), VaultError> {
        tokio::pin!(stop);
        loop {
            let ttl = self.token_ttl().await.unwrap_or(Duration::ZERO);
            let wait = if ttl.is_zero() {
                // Unknown (lookup failed) or never expiring: look again in a while.
                Duration::from_secs(60)
            } else {
                (ttl * 2 / 3).max(Duration::from_millis(500))
            };
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(wait) => {}
            }
            if ttl.is_zero() && self.token_valid().await {
                continue;
            }
            self.renew_or_login().await?;
        }
    }

    /// The token's remaining time to live; zero for a token that never expires.
    async fn token_ttl(&self) -> Result<Duration, ClientError> {
        let client = self.client.read().await;
        vaultrs::token::lookup_self(&*client)
            .await
            .map(|info| Duration::from_secs(info.ttl))
    }

    /// Whether the token still works (readiness reports it).
    pub async fn token_valid(&self) -> bool {
        let client = self.client.read().await;
        vaultrs::token::lookup_self(&*client).await.is_ok()
    }

    /// Renews the token; logs in again when that fails or leaves less than a few seconds (a token
    /// at its maximum time to live cannot be extended).
    async fn renew_or_login(&self) -> Result<(), VaultError> {
        let renewed = {
            let client = self.client.read().await;
            vaultrs::token::renew_self(&*client, None).await
        };
        match renewed {
            Ok(auth) if auth.lease_duration >= 3 => {
                tracing::debug!(ttl_secs = auth.lease_duration, "vault token renewed");
                Ok(())
            }
            outcome => {
                if let Err(err) = &outcome {
                    tracing::warn!(error = %err, "vault token renewal failed; logging in again");
                } else {
                    tracing::info!("vault token at its maximum lifetime; logging in again");
                }
                let fresh = authenticate(&self.config).await?;
                *self.client.write().await = fresh;
                tracing::info!("logged in to vault again");
                Ok(())
            }
        }
    }
}

/// A client logged in with `config`'s method.
async fn authenticate(config: &VaultConfig) -> Result<VaultClient, VaultError> {
    let addr = config.addr.clone();
    let settings = VaultClientSettingsBuilder::default()
        .address(&config.addr)
        .timeout(Some(Duration::from_millis(config.timeout_ms)))
        .token("")
        .build()
        .map_err(|e| VaultError::Other {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
    let mut client = VaultClient::new(settings).map_err(|e| VaultError::Other {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;

    match config.auth {
        VaultAuth::Token => {
            let token = read_credential(
                "vault token",
                config.token.as_ref(),
                config.token_file.as_deref(),
            )?;
            client.set_token(token.expose_secret());
            vaultrs::token::lookup_self(&client)
                .await
                .map_err(|e| login_error(&addr, "token", &e))?;
        }
        VaultAuth::Approle => {
            let role_id = match (&config.role_id, &config.role_id_file) {
                (Some(id), _) => id.clone(),
                (None, Some(file)) => read_file("approle role id", file)?
                    .expose_secret()
                    .to_owned(),
                (None, None) => {
                    return Err(VaultError::Login {
                        addr,
                        method: "approle",
                        reason: "no role id configured".to_owned(),
                    });
                }
            };
            let secret_id = read_credential(
                "approle secret id",
                config.secret_id.as_ref(),
                config.secret_id_file.as_deref(),
            )?;
            let auth = vaultrs::auth::approle::login(
                &client,
                &config.approle_mount,
                &role_id,
                secret_id.expose_secret(),
            )
            .await
            .map_err(|e| login_error(&addr, "approle", &e))?;
            client.set_token(&auth.client_token);
        }
        VaultAuth::Jwt | VaultAuth::Kubernetes => {
            let kubernetes = matches!(config.auth, VaultAuth::Kubernetes);
            let method = if kubernetes { "kubernetes" } else { "jwt" };
            let file = config
                .jwt_file
                .clone()
                .unwrap_or_else(|| crate::config::KUBERNETES_TOKEN_FILE.into());
            // Read anew at every login: the kubelet and token issuers rotate these files.
            let jwt = read_file("vault jwt", &file)?;
            let role = config.role.clone().unwrap_or_else(|| config.service_role());
            let auth = if kubernetes {
                vaultrs::auth::kubernetes::login(
                    &client,
                    &config.kubernetes_mount,
                    &role,
                    jwt.expose_secret(),
                )
                .await
            } else {
                vaultrs::auth::oidc::login(
                    &client,
                    &config.jwt_mount,
                    jwt.expose_secret(),
                    Some(role),
                )
                .await
            }
            .map_err(|e| login_error(&addr, method, &e))?;
            client.set_token(&auth.client_token);
        }
    }
    Ok(client)
}

impl VaultSession {
    /// Reads the KV v2 secret at `<secret_path>/<name>`.
    pub async fn read_secret<T: DeserializeOwned>(&self, name: &str) -> Result<T, VaultError> {
        let path = format!("{}/{name}", self.config.secret_path);
        let mount = &self.config.kv_mount;
        let client = self.client.read().await;
        let value: serde_json::Value =
            vaultrs::kv2::read(&*client, mount, &path)
                .await
                .map_err(|e| match &e {
                    ClientError::APIError { code, .. } if matches!(code, 403 | 404) => {
                        VaultError::MissingSecret {
                            mount: mount.clone(),
                            path: path.clone(),
                            reason: format!("HTTP {code}"),
                        }
                    }
                    ClientError::RestClientError { .. } => transport_error(&self.config.addr, &e),
                    _ => VaultError::Other {
                        addr: self.config.addr.clone(),
                        reason: e.to_string(),
                    },
                })?;
        serde_json::from_value(value).map_err(|e| VaultError::MalformedSecret {
            mount: mount.clone(),
            path,
            // serde's message names the missing or mistyped field, never its value.
            reason: e.to_string(),
        })
    }

    /// Reads the database login at `<secret_path>/database`.
    pub async fn database_credentials(&self) -> Result<DatabaseCredentials, VaultError> {
        self.read_secret("database").await
    }

    /// Reads the keys that seal secrets inside jobs, at `<secret_path>/job-secrets`.
    pub async fn sealing_keys(&self) -> Result<crate::sealed::SealingKeys, VaultError> {
        self.read_secret("job-secrets").await
    }

    /// Reads the NATS login at `<secret_path>/nats`; `None` when there is no such secret (a broker
    /// that takes clients without users, as in single-service tests).
    pub async fn nats_credentials(&self) -> Result<Option<NatsCredentials>, VaultError> {
        match self.read_secret("nats").await {
            Ok(credentials) => Ok(Some(credentials)),
            Err(VaultError::MissingSecret { reason, .. }) if reason == "HTTP 404" => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// True while Vault answers, is unsealed and takes this session's token; used by readiness.
    pub async fn is_available(&self) -> bool {
        matches!(
            seal_status(&self.probe, &self.config.addr).await,
            Ok(SealState::Unsealed)
        ) && self.token_valid().await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SealState {
    Unsealed,
    Sealed,
    Uninitialized,
}

#[derive(Deserialize)]
struct SealStatusBody {
    initialized: bool,
    sealed: bool,
}

/// Reads `GET /v1/sys/seal-status` (unauthenticated). vaultrs's health call expects a field that
/// OpenBao does not send, so the probe is made directly.
async fn seal_status(client: &reqwest::Client, addr: &str) -> Result<SealState, VaultError> {
    let url = format!("{}/v1/sys/seal-status", addr.trim_end_matches('/'));
    let unreachable = |reason: String| VaultError::Unreachable {
        addr: addr.to_owned(),
        reason,
    };
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| unreachable(innermost(&e)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| unreachable(innermost(&e)))?;
    let parsed: SealStatusBody = serde_json::from_slice(&body).map_err(|_| {
        unreachable(format!(
            "HTTP {status} from {url} is not a Vault seal status"
        ))
    })?;
    Ok(match (parsed.initialized, parsed.sealed) {
        (false, _) => SealState::Uninitialized,
        (true, true) => SealState::Sealed,
        (true, false) => SealState::Unsealed,
    })
}

/// The innermost cause of an error: "Connection refused" rather than "error sending request".
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut reason = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        reason = cause.to_string();
        source = cause.source();
    }
    reason.replace('\n', " ")
}

fn not_serving(addr: &str, state: &str) -> VaultError {
    VaultError::NotServing {
        addr: addr.to_owned(),
        state: state.to_owned(),
    }
}

fn transport_error(addr: &str, err: &ClientError) -> VaultError {
    VaultError::Unreachable {
        addr: addr.to_owned(),
        reason: innermost(err),
    }
}

fn login_error(addr: &str, method: &'static str, err: &ClientError) -> VaultError {
    let reason = match err {
        ClientError::APIError { code, errors } => {
            let said = errors.join(", ");
            if said.is_empty() {
                format!("HTTP {code}")
            } else {
                format!("HTTP {code}: {said}")
            }
        }
        ClientError::RestClientError { .. } => return transport_error(addr, err),
        other => other.to_string(),
    };
    VaultError::Login {
        addr: addr.to_owned(),
        method,
        reason,
    }
}

fn read_credential(
    what: &'static str,
    inline: Option<&SecretString>,
    file: Option<&Path>,
) -> Result<SecretString, VaultError> {
    match (inline, file) {
        (Some(value), _) => Ok(value.clone()),
        (None, Some(file)) => read_file(what, file),
        (None, None) => Err(VaultError::CredentialFile {
            what,
            path: "(not configured)".to_owned(),
            reason: "neither a value nor a file is set".to_owned(),
        }),
    }
}

fn read_file(what: &'static str, path: &Path) -> Result<SecretString, VaultError> {
    std::fs::read_to_string(path)
        .map(|s| SecretString::from(s.trim().to_owned()))
        .map_err(|e| VaultError::CredentialFile {
            what,
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}
