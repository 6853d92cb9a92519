//! A real identity service for the service test suites. One per test process, on its own thread
//! and runtime (so it outlives each test's runtime), with a fresh database and a signing key
//! written to Vault. [`as_user`](crate::as_user) mints tokens with that key; apps under test
//! point `auth.identity_endpoint` at it with [`with_identity`].

use std::sync::OnceLock;

use taskmesh_identity::keys::{self, StoredKey, StoredKeys};
use taskmesh_mesh::ConfigLayers;
use taskmesh_mesh::auth::{AUDIENCE, Claims};

use crate::{Stack, TestDatabase};

/// The test process's identity service.
#[derive(Debug, Clone)]
pub struct TestIdentity {
    /// gRPC endpoint, `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The key that signs its tokens.
    pub key: StoredKey,
    /// Its database (and Vault secret path).
    pub db: TestDatabase,
}

static IDENTITY: OnceLock<TestIdentity> = OnceLock::new();

/// Starts (once) and returns the process's identity service.
pub fn identity() -> &'static TestIdentity {
    IDENTITY.get_or_init(|| {
        let (ready, started) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("identity runtime");
            runtime.block_on(async move {
                let stack = Stack::load();
                let (identity, app) = build(&stack, &stack.nats_url, |l| l).await;
                ready.send(identity).expect("report identity");
                app.run(std::future::pending())
                    .await
                    .expect("identity runs");
            });
        });
        started.recv().expect("identity started")
    })
}

/// Builds an identity app over a fresh database and signing key, on `nats_url`; the caller runs it.
pub async fn build(
    stack: &Stack,
    nats_url: &str,
    customize: impl FnOnce(ConfigLayers) -> ConfigLayers,
) -> (TestIdentity, taskmesh_identity::App) {
    let db = TestDatabase::create(stack, "identity_test").await;
    let key = provision_keys(stack, &db.secret_path).await;
    let layers =
        customize(db.app_layers(taskmesh_identity::Config::default_layers(), stack, nats_url));
    let config = taskmesh_identity::Config::from_layers(&layers).expect("identity config");
    let app = taskmesh_identity::App::build(config)
        .await
        .expect("identity builds");
    let identity = TestIdentity {
        endpoint: format!("http://{}", app.grpc_addr()),
        key,
        db,
    };
    (identity, app)
}

/// Writes a fresh signing key to Vault at `<secret_path>/signing-keys`, as provisioning does.
pub async fn provision_keys(stack: &Stack, secret_path: &str) -> StoredKey {
    let key = keys::generate().expect("signing key");
    vaultrs::kv2::set(
        &stack.vault(),
        "secret",
        &format!("{secret_path}/{}", keys::SECRET_NAME),
        &StoredKeys {
            keys: vec![key.clone()],
        },
    )
    .await
    .expect("write signing keys");
    key
}

/// `layers` verifying callers against the process's identity service.
pub fn with_identity(layers: ConfigLayers) -> ConfigLayers {
    layers.set("auth.identity_endpoint", identity().endpoint.clone())
}

/// Claims for `users/{user}` valid for an hour.
pub fn claims(user: &str) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: taskmesh_mesh::auth::AuthConfig::default().issuer,
        sub: format!("users/{user}"),
        aud: AUDIENCE.to_owned(),
        exp: now + 3600,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
    }
}

/// A token signed by `key` with `claims`.
pub fn sign(key: &StoredKey, claims: &Claims) -> String {
    keys::sign_with(key, claims).expect("sign")
}

/// An access token for `users/{user}` from the process's identity service.
pub fn token(user: &str) -> String {
    sign(&identity().key, &claims(user))
}

/// Adds a token for its user to every request that carries no credentials, so that test clients
/// act for a default user unless a request names another one with [`as_user`](crate::as_user).
#[derive(Debug, Clone, Copy)]
pub struct DefaultCaller(pub &'static str);

impl tonic::service::Interceptor for DefaultCaller {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if !request.metadata().contains_key("authorization") {
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {}", token(self.0)).parse().expect("ascii"),
            );
        }
        Ok(request)
    }
}

/// A channel whose calls act for a [`DefaultCaller`].
pub type Authed =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, DefaultCaller>;

/// A key identity does not know: tokens it signs must be refused everywhere.
pub fn foreign_key() -> StoredKey {
    keys::generate().expect("signing key")
}

/// A token for `users/{user}` from the process's identity key that expired a minute ago.
pub fn expired_token(user: &str) -> String {
    let mut claims = claims(user);
    claims.exp = chrono::Utc::now().timestamp() - 60;
    claims.iat = claims.exp - 900;
    claims.nbf = claims.iat;
    sign(&identity().key, &claims)
}
