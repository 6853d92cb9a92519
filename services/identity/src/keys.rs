//! The signing keys of access tokens. They live in Vault at `<secret_path>/signing-keys` as a list:
//! exactly one `active` key signs; `verifying` keys (rotated out) still verify until they are
//! retired, i.e. removed from the list. Provisioning creates the first key ([`rotate`]); the
//! service only reads the list, at startup and then every `identity.key_reload_ms`.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use taskmesh_contracts::identity_v1::Jwk;
use taskmesh_mesh::auth::{AUDIENCE, Claims};
use tokio::sync::RwLock;
use vaultrs::client::VaultClient;

/// The name of the secret under the service's secret path.
pub const SECRET_NAME: &str = "signing-keys";

/// Whether a key signs new tokens or only verifies old ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Signs new tokens (exactly one).
    Active,
    /// Rotated out: verifies tokens it signed until retired.
    Verifying,
}

/// One key as stored in Vault.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredKey {
    /// Key id, the tokens' `kid`.
    pub kid: String,
    /// PKCS#8 DER of the Ed25519 private key, base64.
    pub private_key: String,
    /// The 32-byte public key, base64url without padding (the JWK `x`).
    pub public_key: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// Active or verifying.
    pub state: KeyState,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The secret's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredKeys {
    /// Newest first.
    pub keys: Vec<StoredKey>,
}

/// Why the keys could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The list has no active key.
    #[error("no active signing key in Vault; run `identity-keys rotate`")]
    NoActiveKey,
    /// A stored key does not decode.
    #[error("signing key {0} is malformed")]
    Malformed(String),
    /// Vault refused or failed.
    #[error("vault: {0}")]
    Vault(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// The keys in use, reloadable.
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<RwLock<Loaded>>,
    issuer: String,
}

struct Loaded {
    signing_kid: String,
    signing: EncodingKey,
    jwks: Vec<Jwk>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

fn load(stored: &StoredKeys) -> Result<Loaded, KeyError> {
    let active = stored
        .keys
        .iter()
        .find(|k| k.state == KeyState::Active)
        .ok_or(KeyError::NoActiveKey)?;
    let der = STANDARD
        .decode(&active.private_key)
        .map_err(|_| KeyError::Malformed(active.kid.clone()))?;
    let jwks = stored
        .keys
        .iter()
        .map(|k| Jwk {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: k.public_key.clone(),
            kid: k.kid.clone(),
            alg: "EdDSA".to_owned(),
            r#use: "sig".to_owned(),
        })
        .collect();
    Ok(Loaded {
        signing_kid: active.kid.clone(),
        signing: EncodingKey::from_ed_der(&der),
        jwks,
    })
}

impl KeyRing {
    /// A ring over `stored`, signing tokens issued by `issuer`.
    pub fn new(stored: &StoredKeys, issuer: &str) -> Result<Self, KeyError> {
        Ok(Self {
            inner: Arc::new(RwLock::new(load(stored)?)),
            issuer: issuer.to_owned(),
        })
    }

    /// Replaces the keys (after a reload from Vault).
    pub async fn replace(&self, stored: &StoredKeys) -> Result<(), KeyError> {
        let loaded = load(stored)?;
        let mut inner = self.inner.write().await;
        if inner.signing_kid != loaded.signing_kid || inner.jwks.len() != loaded.jwks.len() {
            tracing::info!(signing_kid = %loaded.signing_kid, keys = loaded.jwks.len(), "signing keys changed");
        }
        *inner = loaded;
        Ok(())
    }

    /// The public keys.
    pub async fn jwks(&self) -> Vec<Jwk> {
        self.inner.read().await.jwks.clone()
    }

    /// An access token for `user` (`users/{id}`) valid for `ttl` seconds from `now`.
    pub async fn issue(&self, user: &str, now: i64, ttl: i64) -> Result<String, KeyError> {
        let inner = self.inner.read().await;
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: user.to_owned(),
            aud: AUDIENCE.to_owned(),
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::now_v7().to_string(),
        };
        sign(&inner.signing_kid, &inner.signing, &claims)
    }
}

/// Signs `claims` with the key `kid`.
pub fn sign(kid: &str, key: &EncodingKey, claims: &Claims) -> Result<String, KeyError> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).map_err(|e| KeyError::Sign(e.to_string()))
}

/// A fresh Ed25519 key, active.
pub fn generate() -> Result<StoredKey, KeyError> {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let der = key
        .to_pkcs8_der()
        .map_err(|e| KeyError::Sign(e.to_string()))?;
    let now = chrono::Utc::now();
    Ok(StoredKey {
        kid: format!(
            "{}-{}",
            now.format("%Y%m%d%H%M%S"),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
        private_key: STANDARD.encode(der.as_bytes()),
        public_key: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        created: now.to_rfc3339(),
        state: KeyState::Active,
    })
}

/// Reads the stored keys (none when the secret does not exist yet).
pub async fn read(vault: &VaultClient, mount: &str, path: &str) -> Result<StoredKeys, KeyError> {
    match vaultrs::kv2::read::<StoredKeys>(vault, mount, path).await {
        Ok(keys) => Ok(keys),
        Err(vaultrs::error::ClientError::APIError { code: 404, .. }) => Ok(StoredKeys::default()),
        Err(e) => Err(KeyError::Vault(e.to_string())),
    }
}

/// Adds a new active key; the previous active key keeps verifying. Returns the new kid.
pub async fn rotate(vault: &VaultClient, mount: &str, path: &str) -> Result<String, KeyError> {
    let mut stored = read(vault, mount, path).await?;
    for key in &mut stored.keys {
        key.state = KeyState::Verifying;
    }
    let fresh = generate()?;
    let kid = fresh.kid.clone();
    stored.keys.insert(0, fresh);
    vaultrs::kv2::set(vault, mount, path, &stored)
        .await
        .map_err(|e| KeyError::Vault(e.to_string()))?;
    Ok(kid)
}

/// Removes a verifying key: tokens it signed stop verifying once services' JWKS caches expire.
pub async fn retire(
    vault: &VaultClient,
    mount: &str,
    path: &str,
    kid: &str,
) -> Result<(), KeyError> {
    let mut stored = read(vault, mount, path).await?;
    if stored
        .keys
        .iter()
        .any(|k| k.kid == kid && k.state == KeyState::Active)
    {
        return Err(KeyError::Vault(format!(
            "{kid} is the active key; rotate first"
        )));
    }
    stored.keys.retain(|k| k.kid != kid);
    vaultrs::kv2::set(vault, mount, path, &stored)
        .await
        .map_err(|e| KeyError::Vault(e.to_string()))?;
    Ok(())
}

/// Signs arbitrary claims with the active stored key (tests mint expired or foreign tokens).
pub fn sign_with(stored: &StoredKey, claims: &Claims) -> Result<String, KeyError> {
    let der = STANDARD
        .decode(&stored.private_key)
        .map_err(|_| KeyError::Malformed(stored.kid.clone()))?;
    sign(&stored.kid, &EncodingKey::from_ed_der(&der), claims)
}
