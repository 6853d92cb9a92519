//! Authentication for every service and for the gateway. A call carries either an access token
//! (`authorization: Bearer <JWT>`, EdDSA, verified against identity's JWKS) or an API key
//! (`authorization: Bearer tmk_…` or `x-api-key: tmk_…`, resolved by identity). The
//! [`Authenticator`] turns those headers into a [`Caller`]; the server layer refuses calls without
//! valid credentials with UNAUTHENTICATED, except health, reflection and the [`PUBLIC_METHODS`].
//!
//! The JWKS is cached for `auth.jwks_cache_ms` and fetched again at once when a token names an
//! unknown `kid`; fetches are at least a second apart, so neither random `kid`s nor an unreachable
//! identity can turn every call into a fetch. A key identity
//! retires stops verifying once the cache has expired. A token whose signature verified is
//! remembered (by SHA-256) until it expires or the key set changes, so repeated calls skip the
//! signature check. Resolved API keys are cached for `auth.api_key_cache_ms`, so a revoked key is
//! refused after at most that long.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use prost_reflect::{DescriptorPool, Value};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use taskmesh_contracts::identity_v1::{ApiKeyScope, AuthenticateApiKeyResponse, Jwk};
use tokio::sync::{Mutex, RwLock};
use tonic::{Code, Status};

pub use crate::config::AuthConfig;

/// The header that carries a bearer token or API key.
pub const AUTHORIZATION: &str = "authorization";
/// The alternative header for API keys.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Every API key secret starts with this, which tells it apart from a JWT.
pub const API_KEY_PREFIX: &str = "tmk_";
/// The `aud` of every access token.
pub const AUDIENCE: &str = "taskmesh";

/// RPCs anyone may call: signing up and in, refreshing, and the public keys.
pub const PUBLIC_METHODS: &[&str] = &[
    "/taskmesh.identity.v1.IdentityService/Register",
    "/taskmesh.identity.v1.IdentityService/Login",
    "/taskmesh.identity.v1.IdentityService/Refresh",
    "/taskmesh.identity.v1.IdentityService/Logout",
    "/taskmesh.identity.v1.IdentityService/GetJwks",
    "/taskmesh.identity.v1.ApiKeyService/AuthenticateApiKey",
    // Calendar programs read a feed with the secret in its address and no other credential.
    "/taskmesh.bookings.v1.CalendarService/DownloadCalendarFeed",
];

/// RPCs only services call (resolving an API key): the gateway neither routes nor forwards them,
/// so that nobody outside the mesh can probe API keys through them.
pub const INTERNAL_METHODS: &[&str] = &["/taskmesh.identity.v1.ApiKeyService/AuthenticateApiKey"];

/// Whether `path` (`/package.Service/Method`) needs no credentials: the public RPCs plus health
/// and reflection.
pub fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.")
        || path.starts_with("/grpc.reflection.")
        || PUBLIC_METHODS.contains(&path)
}

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only calls that read (mapped to HTTP GET): read-scoped API keys.
    Read,
    /// Everything the user may do: access tokens and write-scoped API keys.
    Write,
}

/// The credential a call came with, kept to pass on to the services it calls. Its `Debug` shows
/// only which kind it is.
#[derive(Clone)]
pub struct Credential {
    header: &'static str,
    value: String,
}

impl Credential {
    /// The header to forward and its value.
    pub fn header(&self) -> (&'static str, &str) {
        (self.header, &self.value)
    }

    /// Whether this is an API key rather than a session's access token.
    pub fn is_api_key(&self) -> bool {
        self.header == API_KEY_HEADER
            || self
                .value
                .split_once(' ')
                .is_some_and(|(_, secret)| secret.trim().starts_with(API_KEY_PREFIX))
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}: <redacted>)", self.header)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `users/{user}`.
    pub user: String,
    /// What the credential allows.
    pub scope: Scope,
    /// The credential, to forward.
    pub credential: Credential,
}

/// The claims of a taskmesh access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer (`auth.issuer`).
    pub iss: String,
    /// `users/{user}`.
    pub sub: String,
    /// [`AUDIENCE`].
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Token id.
    pub jti: String,
}

/// Why credentials were refused. The text is safe to return: it never contains the credential.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credential at all.
    #[error("missing credentials: send `authorization: Bearer <token>`")]
    Missing,
    /// The credential does not verify (bad format, signature, issuer, audience, expired, unknown
    /// or revoked key).
    #[error("invalid credentials: {0}")]
    Invalid(&'static str),
    /// Identity could not be asked.
    #[error("the identity service is unavailable")]
    Unavailable,
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Unavailable => crate::status::unavailable("the identity service"),
            other => Status::unauthenticated(other.to_string()),
        }
    }
}

/// Where the verification material comes from: identity's published keys and its API-key lookup.
/// `taskmesh_clients::IdentityClient` implements it over gRPC; the runtime itself calls no
/// service.
pub trait KeySource: Send + Sync + 'static {
    /// The signing keys identity publishes (its JWKS).
    fn jwks(&self) -> BoxFuture<'_, Result<Vec<Jwk>, Status>>;
    /// The user and scope of an API key secret; UNAUTHENTICATED when it is unknown, expired or
    /// revoked.
    fn resolve_api_key<'a>(
        &'a self,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<AuthenticateApiKeyResponse, Status>>;
}

/// Verifies credentials against identity. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("identity", &self.inner.config.identity_endpoint)
            .finish_non_exhaustive()
    }
}

struct Inner {
    source: Arc<dyn KeySource>,
    config: AuthConfig,
    jwks: RwLock<Jwks>,
    /// Serializes JWKS fetches and remembers the last one.
    last_fetch: Mutex<Option<Instant>>,
    api_keys: Mutex<HashMap<[u8; 32], CachedKey>>,
    /// Digests of API keys identity did not know, with when it said so.
    unknown_keys: std::sync::Mutex<HashMap<[u8; 32], Instant>>,
    /// Tokens whose signature was checked against the current key set, by SHA-256, so that a
    /// client's repeated calls skip the Ed25519 verification. Emptied whenever the JWKS is
    /// replaced, so a retired key's tokens are refused from then on.
    verified: std::sync::Mutex<HashMap<[u8; 32], Claims>>,
}

/// Most unknown API keys remembered; past this the oldest are forgotten.
const MAX_UNKNOWN_KEYS: usize = 100_000;

/// Whether `secret` has the form of the API keys identity mints: [`API_KEY_PREFIX`] and 43
/// base64url characters (256 random bits).
pub fn well_formed_api_key(secret: &str) -> bool {
    secret.strip_prefix(API_KEY_PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Seconds of clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: i64 = 5;
/// Most tokens remembered as verified; past this the memory starts over.
const MAX_VERIFIED: usize = 10_000;

#[derive(Default)]
struct Jwks {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

struct CachedKey {
    user: String,
    scope: Scope,
    expires: Option<i64>,
    cached: Instant,
}

/// Shortest time between two JWKS fetches.
const MIN_REFETCH: Duration = Duration::from_secs(1);

impl Authenticator {
    /// An authenticator with `config`'s issuer and cache times, fetching keys from `source`.
    pub fn new(config: &AuthConfig, source: Arc<dyn KeySource>) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                config: config.clone(),
                jwks: RwLock::new(Jwks::default()),
                last_fetch: Mutex::new(None),
                api_keys: Mutex::new(HashMap::new()),
                unknown_keys: std::sync::Mutex::new(HashMap::new()),
                verified: std::sync::Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The caller named by the `authorization` or `x-api-key` header.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        let (header, value) = if let Some(value) = headers.get(AUTHORIZATION) {
            (AUTHORIZATION, value)
        } else if let Some(value) = headers.get(API_KEY_HEADER) {
            (API_KEY_HEADER, value)
        } else {
            return Err(AuthError::Missing);
        };
        let value = value
            .to_str()
            .map_err(|_| AuthError::Invalid("the header is not text"))?
            .trim();
        let secret = if header == AUTHORIZATION {
            let (scheme, rest) = value
                .split_once(' ')
                .ok_or(AuthError::Invalid("expected `Bearer <token>`"))?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthError::Invalid("expected `Bearer <token>`"));
            }
            rest.trim()
        } else {
            value
        };
        let credential = Credential {
            header,
            value: value.to_owned(),
        };
        if secret.starts_with(API_KEY_PREFIX) {
            let (user, scope) = self.api_key(secret).await?;
            return Ok(Caller {
                user,
                scope,
                credential,
            });
        }
        let claims = self.verify_token(secret).await?;
        Ok(Caller {
            user: claims.sub,
            scope: Scope::Write,
            credential,
        })
    }

    /// The claims of a valid access token.
    pub async fn verify_token(&self, token: &str) -> Result<Claims, AuthError> {
        let jwks_ttl = Duration::from_millis(self.inner.config.jwks_cache_ms);
        let stale = self
            .inner
            .jwks
            .read()
            .await
            .fetched
            .is_none_or(|at| at.elapsed() >= jwks_ttl);
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if !stale && let Some(claims) = self.remembered(&digest) {
            return Ok(claims);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("malformed token"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid("unsupported algorithm"));
        }
        let kid = header
            .kid
            .ok_or(AuthError::Invalid("the token names no key"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[&self.inner.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS as u64;

        if stale || !self.inner.jwks.read().await.keys.contains_key(&kid) {
            self.refresh_jwks().await?;
        }
        let jwks = self.inner.jwks.read().await;
        let key = jwks
            .keys
            .get(&kid)
            .ok_or(AuthError::Invalid("the token's key is unknown or retired"))?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            AuthError::Invalid(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::InvalidSignature => "bad signature",
                ErrorKind::InvalidAudience => "wrong audience",
                ErrorKind::InvalidIssuer => "wrong issuer",
                ErrorKind::ImmatureSignature => "the token is not valid yet",
                _ => "malformed token",
            })
        })?;
        if !data.claims.sub.starts_with("users/") {
            return Err(AuthError::Invalid("the token names no user"));
        }
        drop(jwks);
        if let Ok(mut verified) = self.inner.verified.lock() {
            if verified.len() >= MAX_VERIFIED {
                verified.clear();
            }
            verified.insert(digest, data.claims.clone());
        }
        Ok(data.claims)
    }

    /// The claims of a token verified before against the current keys, while it has not expired.
    fn remembered(&self, digest: &[u8; 32]) -> Option<Claims> {
        let now = chrono::Utc::now().timestamp();
        let verified = self.inner.verified.lock().ok()?;
        verified
            .get(digest)
            .filter(|claims| claims.exp + LEEWAY_SECS > now)
            .cloned()
    }

    /// Fetches the JWKS unless a fetch was tried less than [`MIN_REFETCH`] ago (by this call's
    /// competitors or after an unknown `kid`), so neither random `kid`s nor an unreachable
    /// identity turn every call into a fetch. Keys fetched earlier keep working while identity
    /// is away; with none at all the caller gets UNAVAILABLE.
    async fn refresh_jwks(&self) -> Result<(), AuthError> {
        let mut last = self.inner.last_fetch.lock().await;
        if !last.is_some_and(|at| at.elapsed() < MIN_REFETCH) {
            *last = Some(Instant::now());
            match self.inner.source.jwks().await {
                Ok(keys) => self.replace_keys(keys).await,
                Err(status) => tracing::warn!(code = ?status.code(), "fetching the JWKS failed"),
            }
        }
        drop(last);
        if self.inner.jwks.read().await.keys.is_empty() {
            Err(AuthError::Unavailable)
        } else {
            Ok(())
        }
    }

    /// Installs a fetched key set; tokens verified against the previous set must verify again.
    async fn replace_keys(&self, keys: Vec<Jwk>) {
        let mut decoded = HashMap::new();
        for key in keys {
            if key.kty != "OKP" || key.crv != "Ed25519" {
                continue;
            }
            match DecodingKey::from_ed_components(&key.x) {
                Ok(decoding) => {
                    decoded.insert(key.kid, decoding);
                }
                Err(_) => tracing::warn!(kid = %key.kid, "ignoring a malformed JWK"),
            }
        }
        let mut jwks = self.inner.jwks.write().await;
        if let Ok(mut verified) = self.inner.verified.lock() {
            verified.clear();
        }
        jwks.keys = decoded;
        jwks.fetched = Some(Instant::now());
    }

    async fn api_key(&self, secret: &str) -> Result<(String, Scope), AuthError> {
        let unknown = || AuthError::Invalid("unknown, expired or revoked API key");
        // Keys identity mints are the prefix and 43 base64url characters; nothing else is asked.
        if !well_formed_api_key(secret) {
            return Err(unknown());
        }
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let unknown_ttl = Duration::from_millis(self.inner.config.unknown_api_key_cache_ms);
        if let Ok(refused) = self.inner.unknown_keys.lock()
            && refused
                .get(&digest)
                .is_some_and(|at| at.elapsed() < unknown_ttl)
        {
            return Err(unknown());
        }
        let ttl = Duration::from_millis(self.inner.config.api_key_cache_ms);
        let now = chrono::Utc::now().timestamp();
        {
            let cache = self.inner.api_keys.lock().await;
            if let Some(hit) = cache.get(&digest)
                && hit.cached.elapsed() < ttl
                && hit.expires.is_none_or(|at| at > now)
            {
                return Ok((hit.user.clone(), hit.scope));
            }
        }
        let response = self.inner.source.resolve_api_key(secret).await;
        let found = match response {
            Ok(found) => found,
            Err(status) if status.code() == Code::Unauthenticated => {
                if let Ok(mut refused) = self.inner.unknown_keys.lock() {
                    if refused.len() >= MAX_UNKNOWN_KEYS {
                        refused.retain(|_, at| at.elapsed() < unknown_ttl);
                        if refused.len() >= MAX_UNKNOWN_KEYS {
                            refused.clear();
                        }
                    }
                    refused.insert(digest, Instant::now());
                }
                return Err(unknown());
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), "resolving an API key failed");
                return Err(AuthError::Unavailable);
            }
        };
        let scope = match ApiKeyScope::try_from(found.scope) {
            Ok(ApiKeyScope::Write) => Scope::Write,
            _ => Scope::Read,
        };
        let mut cache = self.inner.api_keys.lock().await;
        // Entries of keys nobody uses any more would otherwise pile up.
        cache.retain(|_, entry| entry.cached.elapsed() < ttl);
        cache.insert(
            digest,
            CachedKey {
                user: found.user.clone(),
                scope,
                expires: found.expire_time.map(|t| t.seconds),
                cached: Instant::now(),
            },
        );
        Ok((found.user, scope))
    }
}

/// The RPCs that only read: those whose `google.api.http` rule is a GET. Read-scoped API keys may
/// call only these.
pub fn read_only_methods(descriptor_set: &[u8]) -> HashSet<String> {
    let Ok(pool) = DescriptorPool::decode(descriptor_set) else {
        return HashSet::new();
    };
    let Some(extension) = pool.get_extension_by_name("google.api.http") else {
        return HashSet::new();
    };
    let mut methods = HashSet::new();
    for service in pool.services() {
        for method in service.methods() {
            let options = method.options();
            if !options.has_extension(&extension) {
                continue;
            }
            if let Value::Message(rule) = options.get_extension(&extension).into_owned()
                && rule.has_field_by_name("get")
            {
                methods.insert(format!("/{}/{}", service.full_name(), method.name()));
            }
        }
    }
    methods
}

/// The check in front of every RPC: authenticates unless the method is public, and refuses
/// read-scoped credentials on methods that write.
#[derive(Clone, Debug)]
pub struct CallGuard {
    authenticator: Authenticator,
    read_only: Arc<HashSet<String>>,
}

impl CallGuard {
    /// A guard for the RPCs described by `descriptor_set`.
    pub fn new(authenticator: Authenticator, descriptor_set: &[u8]) -> Self {
        Self {
            authenticator,
            read_only: Arc::new(read_only_methods(descriptor_set)),
        }
    }

    /// The same guard verifying with `authenticator`.
    pub fn with_authenticator(&self, authenticator: Authenticator) -> Self {
        Self {
            authenticator,
            read_only: self.read_only.clone(),
        }
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }

    /// `Ok(None)` for public methods, the caller otherwise, or the status refusing the call.
    pub async fn check(&self, path: &str, headers: &HeaderMap) -> Result<Option<Caller>, Status> {
        if is_public(path) {
            return Ok(None);
        }
        let caller = match self.authenticator.authenticate(headers).await {
            Ok(caller) => caller,
            Err(err) => {
                tracing::info!(rpc = path, reason = %err, "call refused");
                return Err(err.into());
            }
        };
        if caller.scope == Scope::Read && !self.read_only.contains(path) {
            return Err(Status::permission_denied(
                "this API key is read-only and the method changes data",
            ));
        }
        Ok(Some(caller))
    }
}
