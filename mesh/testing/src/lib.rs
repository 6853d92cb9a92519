//! Test support for service test suites. Tests run against the real local stack that `make test`
//! (or `make up`) starts: this crate reads its admin credentials from `.taskmesh/secrets/`, creates a
//! fresh database, login role and Vault secret per test, and decodes error details.
//!
//! Only for tests: functions panic with a hint when the stack is not there.

pub mod apps;
pub mod bench;
pub mod identity;
mod servers;

pub use apps::{RunningApp, channel};
pub use identity::{Authed, DefaultCaller, SigningKey, TestIdentity, with_identity};
pub use servers::{NatsServer, ReceivedMail, SmtpServer, TcpProxy};

use std::path::PathBuf;

use sqlx::{Connection, PgConnection};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

/// Where the local stack lives and how to administer it.
#[derive(Clone, Debug)]
pub struct Stack {
    /// `.taskmesh/` of the workspace (or `TASKMESH_HOME`).
    pub home: PathBuf,
    /// PostgreSQL port.
    pub pg_port: u16,
    /// Password of the `taskmesh_admin` superuser.
    pub pg_admin_password: String,
    /// NATS client URL, with the operator's login.
    pub nats_url: String,
    /// OpenBao address.
    pub vault_addr: String,
    /// OpenBao root token (dev server).
    pub vault_root_token: String,
}

fn env_port(name: &str, default: u16) -> u16 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The local stack's directory: `TASKMESH_HOME`, else `.taskmesh` in the workspace around the
/// current directory. Found at run time, never baked in at compile time: clones share one target
/// directory, so a compiled-in path could point into another clone.
pub fn stack_home() -> PathBuf {
    if let Some(home) = std::env::var_os("TASKMESH_HOME") {
        return PathBuf::from(home);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors()
        .find(|dir| dir.join("buf.yaml").is_file() && dir.join("Cargo.toml").is_file())
        .map_or_else(|| cwd.join(".taskmesh"), |root| root.join(".taskmesh"))
}

impl Stack {
    /// Reads the running stack's settings.
    pub fn load() -> Self {
        let home = stack_home();
        let read = |file: &str| {
            std::fs::read_to_string(home.join("secrets").join(file))
                .unwrap_or_else(|e| {
                    panic!("cannot read .taskmesh/secrets/{file} ({e}); start the stack with `make infra`")
                })
                .trim()
                .to_owned()
        };
        // The stack's NATS takes only its users: tests log in as the operator.
        let nats_login = std::fs::read_to_string(home.join("secrets/nats/operator"))
            .map(|password| format!("operator:{}@", password.trim()))
            .unwrap_or_default();
        Self {
            pg_port: env_port("TASKMESH_PG_PORT", 55432),
            pg_admin_password: read("pg-admin-password"),
            nats_url: format!(
                "nats://{nats_login}127.0.0.1:{}",
                env_port("TASKMESH_NATS_PORT", 54222)
            ),
            vault_addr: format!(
                "http://127.0.0.1:{}",
                env_port("TASKMESH_VAULT_PORT", 58200)
            ),
            vault_root_token: read("vault-root-token"),
            home,
        }
    }

    /// A binary the stack installed into its venv (`grpcurl`, `nats-server`, `bao`).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.home.join("venv/bin").join(name)
    }

    /// A superuser connection to the `postgres` database.
    pub async fn admin(&self) -> PgConnection {
        let url = format!(
            "postgres://taskmesh_admin:{}@127.0.0.1:{}/postgres",
            self.pg_admin_password, self.pg_port
        );
        PgConnection::connect(&url)
            .await
            .expect("connect to the local PostgreSQL as admin")
    }

    /// A Vault client with the root token.
    pub fn vault(&self) -> VaultClient {
        VaultClient::new(
            VaultClientSettingsBuilder::default()
                .address(&self.vault_addr)
                .token(&self.vault_root_token)
                .build()
                .expect("vault settings"),
        )
        .expect("vault client")
    }
}

/// A fresh key for sealing jobs' secrets, `id:base64` of 32 random bytes.
pub fn random_sealing_key() -> String {
    use base64::Engine;
    let bytes: Vec<u8> = uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .copied()
        .collect();
    format!(
        "test-{}:{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8],
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// A database, its login role and the Vault secret holding that login.
#[derive(Clone, Debug)]
pub struct TestDatabase {
    /// Database and role name.
    pub name: String,
    /// The role's password.
    pub password: String,
    /// Vault KV path of the service's secrets (`<path>/database` holds the login).
    pub secret_path: String,
}

impl TestDatabase {
    /// A fresh database named `<prefix>_<uuid>` with its own role and Vault secret.
    pub async fn create(stack: &Stack, prefix: &str) -> Self {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let password = uuid::Uuid::new_v4().simple().to_string();
        let mut admin = stack.admin().await;
        // Two statements: CREATE DATABASE refuses to run inside a multi-statement block.
        sqlx::raw_sql(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
            .execute(&mut admin)
            .await
            .expect("create test role");
        sqlx::raw_sql(&format!("CREATE DATABASE {name} OWNER {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let db = Self {
            secret_path: format!("taskmesh/tests/{name}"),
            name,
            password,
        };
        db.store_in_vault(stack).await;
        db.store_sealing_key(stack, &random_sealing_key()).await;
        db
    }

    /// Stores `key` (`id:base64`) as the keys that seal jobs' secrets (`<path>/job-secrets`);
    /// services that share sealed values must share it.
    pub async fn store_sealing_key(&self, stack: &Stack, key: &str) {
        let (id, key) = key.split_once(':').expect("id:base64");
        vaultrs::kv2::set(
            &stack.vault(),
            "secret",
            &format!("{}/job-secrets", self.secret_path),
            &serde_json::json!({ "key_id": id, "key": key }),
        )
        .await
        .expect("write the sealing key to vault");
    }

    /// Writes `value` to Vault at `<secret_path>/<name>` (a service's other secrets: `smtp`).
    pub async fn store_secret(&self, stack: &Stack, name: &str, value: &serde_json::Value) {
        vaultrs::kv2::set(
            &stack.vault(),
            "secret",
            &format!("{}/{name}", self.secret_path),
            value,
        )
        .await
        .expect("write a secret to vault");
    }

    /// Writes the login to Vault at `<secret_path>/database`.
    pub async fn store_in_vault(&self, stack: &Stack) {
        let secret = serde_json::json!({
            "username": self.name,
            "password": self.password,
            "database": self.name,
        });
        vaultrs::kv2::set(
            &stack.vault(),
            "secret",
            &format!("{}/database", self.secret_path),
            &secret,
        )
        .await
        .expect("write the database secret to vault");
    }

    /// Changes the password in PostgreSQL and in Vault, as a rotation would.
    pub async fn rotate_password(&mut self, stack: &Stack) {
        self.password = uuid::Uuid::new_v4().simple().to_string();
        let mut admin = stack.admin().await;
        sqlx::raw_sql(&format!(
            "ALTER ROLE {} PASSWORD '{}'",
            self.name, self.password
        ))
        .execute(&mut admin)
        .await
        .expect("rotate password");
        self.store_in_vault(stack).await;
    }

    /// `base` (a service's default layers) set up for a test: gRPC and admin on ephemeral ports,
    /// this database and its Vault secrets, Vault's root token, NATS at `nats_url`, a short grace
    /// period. Apps that verify callers add [`with_identity`].
    pub fn app_layers(
        &self,
        base: taskmesh_mesh::ConfigLayers,
        stack: &Stack,
        nats_url: &str,
    ) -> taskmesh_mesh::ConfigLayers {
        base.set("grpc.listen", "127.0.0.1:0")
            .set("admin.listen", "127.0.0.1:0")
            .set("vault.addr", stack.vault_addr.clone())
            .set("vault.auth", "token")
            .set("vault.token", stack.vault_root_token.clone())
            .set("vault.secret_path", self.secret_path.clone())
            .set("database.port", stack.pg_port)
            .set("nats.url", nats_url.to_owned())
            .set("shutdown.grace_period_ms", 3000)
    }

    /// A connection to this database as its own role.
    pub async fn connect(&self, stack: &Stack) -> PgConnection {
        PgConnection::connect(&self.url(stack))
            .await
            .expect("connect to the test database")
    }

    /// A pool on this database as its own role.
    pub async fn pool(&self, stack: &Stack) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.url(stack))
            .await
            .expect("a pool on the test database")
    }

    /// The tables of this database with a row holding `needle`, as text or as bytes (a bytea
    /// column such as an event's payload): a scan for data that must not be stored.
    pub async fn tables_containing(&self, stack: &Stack, needle: &str) -> Vec<String> {
        let mut connection = self.connect(stack).await;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT quote_ident(table_name) FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        )
        .fetch_all(&mut connection)
        .await
        .expect("list the tables");
        let mut holding = Vec::new();
        for table in tables {
            // A row as text shows bytea as hex: look for the needle both ways.
            let found: bool = sqlx::query_scalar(&format!(
                "SELECT EXISTS (SELECT 1 FROM {table} t WHERE strpos(t::text, $1) > 0 \
                 OR strpos(t::text, encode(convert_to($1, 'UTF8'), 'hex')) > 0)"
            ))
            .bind(needle)
            .fetch_one(&mut connection)
            .await
            .expect("scan a table");
            if found {
                holding.push(table);
            }
        }
        holding
    }

    fn url(&self, stack: &Stack) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{}",
            self.name, self.password, stack.pg_port, self.name
        )
    }
}

impl TestDatabase {
    /// Creates a read-only policy for this database's secret and an AppRole bound to it, as
    /// provisioning does for `make up`; writes `role-id` and `secret-id` into `dir` and returns
    /// their paths.
    pub async fn approle(&self, stack: &Stack, dir: &std::path::Path) -> (PathBuf, PathBuf) {
        self.approle_with_ttl(stack, dir, None).await
    }

    /// Like [`approle`](Self::approle), with tokens that live `(ttl, max_ttl)` seconds.
    pub async fn approle_with_ttl(
        &self,
        stack: &Stack,
        dir: &std::path::Path,
        ttl: Option<(u64, u64)>,
    ) -> (PathBuf, PathBuf) {
        let vault = stack.vault();
        let role = self.name.clone();
        let policy = format!(
            "path \"secret/data/{}/*\" {{ capabilities = [\"read\"] }}",
            self.secret_path
        );
        vaultrs::sys::policy::set(&vault, &role, &policy)
            .await
            .expect("policy");
        // Enabling twice fails harmlessly.
        let _ = vaultrs::sys::auth::enable(&vault, "approle", "approle", None).await;
        let mut request = vaultrs::api::auth::approle::requests::SetAppRoleRequest::builder();
        // Secret ids expire and allow few logins, as the local stack's do.
        request
            .token_policies(vec![role.clone()])
            .secret_id_ttl("48h")
            .secret_id_num_uses(10_u64);
        if let Some((ttl, max)) = ttl {
            request
                .token_ttl(format!("{ttl}s"))
                .token_max_ttl(format!("{max}s"));
        }
        vaultrs::auth::approle::role::set(&vault, "approle", &role, Some(&mut request))
            .await
            .expect("approle");
        let role_id = vaultrs::auth::approle::role::read_id(&vault, "approle", &role)
            .await
            .expect("role id")
            .role_id;
        let secret_id =
            vaultrs::auth::approle::role::secret::generate(&vault, "approle", &role, None)
                .await
                .expect("secret id")
                .secret_id;
        std::fs::create_dir_all(dir).expect("approle dir");
        let (role_file, secret_file) = (dir.join("role-id"), dir.join("secret-id"));
        std::fs::write(&role_file, role_id).expect("write role id");
        std::fs::write(&secret_file, secret_id).expect("write secret id");
        (role_file, secret_file)
    }
}

/// A request carrying an access token for `users/{user}` signed by the test identity service.
pub fn as_user<T>(user: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", identity::token(user))
            .parse()
            .expect("ascii"),
    );
    request
}

/// The fields of the `BadRequest` violations of a status.
pub fn violations(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The `ErrorInfo.reason` of a status.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// A TCP port free at the time of the call, and never one this process was given before: the
/// system may hand out a port again as soon as its probe is closed, and two services of one test
/// once got the same port for gRPC and admin.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The workspace around the current directory (where `buf.yaml` and `Cargo.toml` are), found at
/// run time like [`stack_home`].
pub fn workspace_root() -> PathBuf {
    let cwd = std::env::current_dir().expect("the current directory");
    cwd.ancestors()
        .find(|dir| dir.join("buf.yaml").is_file() && dir.join("Cargo.toml").is_file())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no taskmesh workspace around {}", cwd.display()))
}

/// A service binary set up as a process of this test: its environment cleared of `TASKMESH_` and
/// `VAULT_` settings, then Vault (token from `token_file`), `db`, NATS at `nats_url`, gRPC on a
/// free port and the admin port `admin`, warnings only, no standard streams. The caller adds its
/// own settings and spawns it.
pub fn service_command(
    binary: &std::path::Path,
    stack: &Stack,
    db: &TestDatabase,
    nats_url: &str,
    token_file: &std::path::Path,
    admin: u16,
) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    for (key, _) in std::env::vars() {
        if key.starts_with("TASKMESH_") || key.starts_with("VAULT_") {
            command.env_remove(key);
        }
    }
    command
        .env("TASKMESH_VAULT__ADDR", &stack.vault_addr)
        .env("TASKMESH_VAULT__AUTH", "token")
        .env("TASKMESH_VAULT__TOKEN_FILE", token_file)
        .env("TASKMESH_VAULT__SECRET_PATH", &db.secret_path)
        .env("TASKMESH_DATABASE__PORT", stack.pg_port.to_string())
        .env("TASKMESH_NATS__URL", nats_url)
        .env(
            "TASKMESH_GRPC__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("TASKMESH_ADMIN__LISTEN", format!("127.0.0.1:{admin}"))
        .env("TASKMESH_TELEMETRY__LOG_LEVEL", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

/// Waits until the service with admin port `admin` answers `/readyz` with success (at most a
/// minute).
pub async fn wait_ready(admin: u16) {
    let client = reqwest::Client::new();
    for _ in 0..240 {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{admin}/readyz"))
            .send()
            .await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("the service with admin port {admin} never became ready");
}
