//! Test harness: reads the local stack's admin credentials from `.taskmesh/`, gives each test its
//! own database, login role and Vault secret, and builds the real app on 127.0.0.1:0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use taskmesh_contracts::projects_v1::board_service_client::BoardServiceClient;
use taskmesh_contracts::projects_v1::member_service_client::MemberServiceClient;
use taskmesh_contracts::projects_v1::organization_service_client::OrganizationServiceClient;
use taskmesh_contracts::projects_v1::project_service_client::ProjectServiceClient;
use taskmesh_mesh::ConfigLayers;
use taskmesh_projects::{App, Config};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

/// Where the local stack lives and how to administer it.
#[derive(Clone, Debug)]
pub(crate) struct Stack {
    pub(crate) home: PathBuf,
    pub(crate) pg_port: u16,
    pub(crate) pg_admin_password: String,
    pub(crate) nats_url: String,
    pub(crate) vault_addr: String,
    pub(crate) vault_root_token: String,
}

fn env_port(name: &str, default: u16) -> u16 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Stack {
    pub(crate) fn load() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let home = std::env::var_os("TASKMESH_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".taskmesh"));
        let read = |file: &str| {
            std::fs::read_to_string(home.join("secrets").join(file))
                .unwrap_or_else(|e| {
                    panic!("cannot read .taskmesh/secrets/{file} ({e}); start the stack with `make infra`")
                })
                .trim()
                .to_owned()
        };
        Self {
            pg_port: env_port("TASKMESH_PG_PORT", 55432),
            pg_admin_password: read("pg-admin-password"),
            nats_url: format!("nats://127.0.0.1:{}", env_port("TASKMESH_NATS_PORT", 54222)),
            vault_addr: format!(
                "http://127.0.0.1:{}",
                env_port("TASKMESH_VAULT_PORT", 58200)
            ),
            vault_root_token: read("vault-root-token"),
            home,
        }
    }

    pub(crate) fn bin(&self, name: &str) -> PathBuf {
        self.home.join("venv/bin").join(name)
    }

    pub(crate) async fn admin(&self) -> PgConnection {
        let url = format!(
            "postgres://taskmesh_admin:{}@127.0.0.1:{}/postgres",
            self.pg_admin_password, self.pg_port
        );
        PgConnection::connect(&url)
            .await
            .expect("connect to the local PostgreSQL as admin")
    }

    pub(crate) fn vault(&self) -> VaultClient {
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

/// A database, its login role and the Vault secret holding that login.
#[derive(Clone, Debug)]
pub(crate) struct TestDatabase {
    pub(crate) name: String,
    pub(crate) password: String,
    pub(crate) secret_path: String,
}

impl TestDatabase {
    pub(crate) async fn create(stack: &Stack) -> Self {
        let name = format!("projects_test_{}", uuid::Uuid::new_v4().simple());
        let password = uuid::Uuid::new_v4().simple().to_string();
        let mut admin = stack.admin().await;
        // Two statements: CREATE DATABASE refuses to run inside the implicit multi-statement block.
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
        db
    }

    pub(crate) async fn store_in_vault(&self, stack: &Stack) {
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
    pub(crate) async fn rotate_password(&mut self, stack: &Stack) {
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
}

/// Configuration for an app on ephemeral ports over `db`, logged in to Vault with the root token.
pub(crate) fn test_layers(stack: &Stack, db: &TestDatabase) -> ConfigLayers {
    Config::default_layers()
        .set("grpc.listen", "127.0.0.1:0")
        .set("admin.listen", "127.0.0.1:0")
        .set("vault.addr", stack.vault_addr.clone())
        .set("vault.auth", "token")
        .set("vault.token", stack.vault_root_token.clone())
        .set("vault.secret_path", db.secret_path.clone())
        .set("database.port", stack.pg_port)
        .set("nats.url", stack.nats_url.clone())
        .set("shutdown.grace_period_ms", 3000)
}

/// A running app and clients for it.
pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    pub(crate) admin_addr: SocketAddr,
    pub(crate) stack: Stack,
    pub(crate) db: TestDatabase,
    pub(crate) channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl TestApp {
    pub(crate) fn projects(&self) -> ProjectServiceClient<Channel> {
        ProjectServiceClient::new(self.channel.clone())
    }

    pub(crate) fn organizations(&self) -> OrganizationServiceClient<Channel> {
        OrganizationServiceClient::new(self.channel.clone())
    }

    pub(crate) fn boards(&self) -> BoardServiceClient<Channel> {
        BoardServiceClient::new(self.channel.clone())
    }

    pub(crate) fn members(&self) -> MemberServiceClient<Channel> {
        MemberServiceClient::new(self.channel.clone())
    }

    /// Stops the app gracefully and waits for it.
    pub(crate) async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), handle).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|layers| layers).await
}

pub(crate) async fn spawn_app_with(
    customize: impl FnOnce(ConfigLayers) -> ConfigLayers,
) -> TestApp {
    let stack = Stack::load();
    let db = TestDatabase::create(&stack).await;
    start(stack, db, customize).await
}

/// Builds and runs the app over an existing database.
pub(crate) async fn start(
    stack: Stack,
    db: TestDatabase,
    customize: impl FnOnce(ConfigLayers) -> ConfigLayers,
) -> TestApp {
    let layers = customize(test_layers(&stack, &db));
    let config = Config::from_layers(&layers).expect("valid test configuration");
    let app = App::build(config).await.expect("app builds");
    let addr = app.grpc_addr();
    let admin_addr = app.admin_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        app.run(async {
            let _ = rx.await;
        })
        .await
        .expect("app runs");
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect to the app");
    TestApp {
        addr,
        admin_addr,
        stack,
        db,
        channel,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

/// Metadata naming the caller, until verified tokens replace it.
pub(crate) fn as_user<T>(user: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "x-taskmesh-user",
        format!("users/{user}").parse().expect("ascii"),
    );
    request
}

/// The field violations of an INVALID_ARGUMENT status.
pub(crate) fn violations(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The `ErrorInfo.reason` of a status.
pub(crate) fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}
