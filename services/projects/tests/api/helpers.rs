//! Test harness: reads the local stack's admin credentials from `.taskmesh/`, gives each test its
//! own database, login role and Vault secret, and builds the real app on 127.0.0.1:0.

use std::net::SocketAddr;
use std::time::Duration;

use taskmesh_contracts::projects_v1::board_service_client::BoardServiceClient;
use taskmesh_contracts::projects_v1::member_service_client::MemberServiceClient;
use taskmesh_contracts::projects_v1::organization_service_client::OrganizationServiceClient;
use taskmesh_contracts::projects_v1::project_service_client::ProjectServiceClient;
use taskmesh_mesh::ConfigLayers;
use taskmesh_projects::{App, Config};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use taskmesh_testing::{Authed, DefaultCaller};
pub(crate) use taskmesh_testing::{Stack, TestDatabase, as_user, reason, violations};

/// Configuration for an app on ephemeral ports over `db`, logged in to Vault with the root token.
pub(crate) fn test_layers(stack: &Stack, db: &TestDatabase) -> ConfigLayers {
    taskmesh_testing::with_identity(db.app_layers(Config::default_layers(), stack, &stack.nats_url))
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
    pub(crate) fn projects(&self) -> ProjectServiceClient<Authed> {
        ProjectServiceClient::with_interceptor(self.channel.clone(), DefaultCaller("ada"))
    }

    pub(crate) fn organizations(&self) -> OrganizationServiceClient<Authed> {
        OrganizationServiceClient::with_interceptor(self.channel.clone(), DefaultCaller("ada"))
    }

    pub(crate) fn boards(&self) -> BoardServiceClient<Authed> {
        BoardServiceClient::with_interceptor(self.channel.clone(), DefaultCaller("ada"))
    }

    pub(crate) fn members(&self) -> MemberServiceClient<Authed> {
        MemberServiceClient::with_interceptor(self.channel.clone(), DefaultCaller("ada"))
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
    let db = TestDatabase::create(&stack, "projects_test").await;
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

/// The service binary with no `TASKMESH_*` or `VAULT_*` variable of the test run.
pub(crate) fn service_binary() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_projects"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TASKMESH_") || key.starts_with("VAULT_") {
            command.env_remove(key);
        }
    }
    command
}
