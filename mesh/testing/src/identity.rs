//! A real identity service for the service test suites: the `identity` binary the workspace built,
//! started once per test process with a fresh database and a signing key provisioned by the same
//! `identity-keys ensure` that `make up` runs. Tokens are minted with that key (read back from
//! Vault); apps under test point `auth.identity_endpoint` at it with [`with_identity`].
//!
//! The process outlives each test's runtime and ends with the test process: it runs under a shell
//! that stops it as soon as the test process's end of a pipe closes.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use taskmesh_mesh::ConfigLayers;
use taskmesh_mesh::auth::{AUDIENCE, Claims};

use crate::{Stack, TestDatabase};

/// A token-signing key: its `kid` and its PKCS#8 DER.
#[derive(Clone)]
pub struct SigningKey {
    /// Key id, the tokens' `kid`.
    pub kid: String,
    der: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The test process's identity service.
#[derive(Debug)]
pub struct TestIdentity {
    /// gRPC endpoint, `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The key that signs its tokens.
    pub key: SigningKey,
    /// Its database (and Vault secret path).
    pub db: TestDatabase,
    /// Closing this pipe stops the process; held for the life of the test process.
    _lifeline: Mutex<ChildStdin>,
    _shell: Mutex<Child>,
}

static IDENTITY: OnceLock<TestIdentity> = OnceLock::new();

/// A workspace binary: beside the directory of this test executable (`target/debug`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; `cargo nextest run --workspace` builds it, or run `cargo build --bins`",
        path.display()
    );
    path
}

/// Starts (once) and returns the process's identity service.
pub fn identity() -> &'static TestIdentity {
    IDENTITY.get_or_init(|| {
        // The set-up is async; this may run inside a test's runtime, so it gets a thread of its own.
        std::thread::spawn(start)
            .join()
            .expect("the test identity service starts")
    })
}

fn start() -> TestIdentity {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stack = Stack::load();
    let (db, key) = runtime.block_on(async {
        let db = TestDatabase::create(&stack, "identity_test").await;
        let key = provision_key(&stack, &db.secret_path).await;
        (db, key)
    });
    let logs = stack.home.join("logs").join("tests");
    std::fs::create_dir_all(&logs).expect("test log directory");
    let log = logs.join(format!("identity-{}.log", db.name));
    // Ephemeral ports, read back from the log: ports picked here could be taken by another test
    // process before the service binds them.
    let vars = [
        ("TASKMESH_GRPC__LISTEN", "127.0.0.1:0".to_owned()),
        ("TASKMESH_ADMIN__LISTEN", "127.0.0.1:0".to_owned()),
        ("TASKMESH_VAULT__ADDR", stack.vault_addr.clone()),
        ("TASKMESH_VAULT__AUTH", "token".to_owned()),
        ("TASKMESH_VAULT__TOKEN_FILE", root_token_file(&stack)),
        ("TASKMESH_VAULT__SECRET_PATH", db.secret_path.clone()),
        ("TASKMESH_DATABASE__PORT", stack.pg_port.to_string()),
        ("TASKMESH_NATS__URL", stack.nats_url.clone()),
        ("TASKMESH_SHUTDOWN__GRACE_PERIOD_MS", "1000".to_owned()),
    ];
    let mut command = Command::new("bash");
    for (key, _) in std::env::vars() {
        if key.starts_with("TASKMESH_") {
            command.env_remove(key);
        }
    }
    // `read` returns when the test process's end of stdin closes, however it ends.
    let mut shell = command
        .args([
            "-c",
            r#""$0" & child=$!; read -r _; kill -TERM "$child" 2>/dev/null; wait "$child""#,
        ])
        .arg(workspace_binary("identity"))
        .envs(vars)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&log).expect("identity log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start identity");
    let lifeline = shell.stdin.take().expect("identity stdin");
    let deadline = Instant::now() + Duration::from_secs(60);
    let grpc = loop {
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(addr) = serving_address(&output) {
            break addr;
        }
        if Instant::now() > deadline || matches!(shell.try_wait(), Ok(Some(_))) {
            panic!("the test identity service did not start:\n{output}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    TestIdentity {
        endpoint: format!("http://{grpc}"),
        key,
        db,
        _lifeline: Mutex::new(lifeline),
        _shell: Mutex::new(shell),
    }
}

/// The gRPC address in the service's `serving` log line (`"grpc_addr":"127.0.0.1:40123"`).
fn serving_address(log: &str) -> Option<String> {
    let start = log.find("\"grpc_addr\":\"")? + "\"grpc_addr\":\"".len();
    let end = log[start..].find('"')?;
    Some(log[start..start + end].to_owned())
}

fn root_token_file(stack: &Stack) -> String {
    stack
        .home
        .join("secrets")
        .join("vault-root-token")
        .display()
        .to_string()
}

/// Provisions a signing key at `<secret_path>/signing-keys` with `identity-keys ensure`, as
/// `make up` does, and reads the active key back.
pub async fn provision_key(stack: &Stack, secret_path: &str) -> SigningKey {
    let path = format!("{secret_path}/signing-keys");
    let output = tokio::process::Command::new(workspace_binary("identity-keys"))
        .args(["ensure", "--vault-addr", &stack.vault_addr, "--token-file"])
        .arg(root_token_file(stack))
        .args(["--path", &path])
        .output()
        .await
        .expect("run identity-keys");
    assert!(
        output.status.success(),
        "identity-keys ensure failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    active_key(stack, &path).await
}

/// The active key of the key list at `path` in Vault.
pub async fn active_key(stack: &Stack, path: &str) -> SigningKey {
    let stored: serde_json::Value = vaultrs::kv2::read(&stack.vault(), "secret", path)
        .await
        .expect("read the signing keys");
    let active = stored["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["state"] == "active"))
        .expect("an active key");
    SigningKey {
        kid: active["kid"].as_str().expect("kid").to_owned(),
        der: STANDARD
            .decode(active["private_key"].as_str().expect("private key"))
            .expect("base64 key"),
    }
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
pub fn sign(key: &SigningKey, claims: &Claims) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&key.der)).expect("sign")
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
pub fn foreign_key() -> SigningKey {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let der = ed25519_dalek::SigningKey::from_bytes(&seed)
        .to_pkcs8_der()
        .expect("pkcs8");
    SigningKey {
        kid: format!("foreign-{}", uuid::Uuid::new_v4().simple()),
        der: der.as_bytes().to_vec(),
    }
}

/// A token for `users/{user}` from the process's identity key that expired a minute ago.
pub fn expired_token(user: &str) -> String {
    let mut claims = claims(user);
    claims.exp = chrono::Utc::now().timestamp() - 60;
    claims.iat = claims.exp - 900;
    claims.nbf = claims.iat;
    sign(&identity().key, &claims)
}
