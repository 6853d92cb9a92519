//! Test harness: identity and projects on a private NATS server, clients, and polling helpers.

use std::time::Duration;

use taskmesh_contracts::identity_v1::api_key_service_client::ApiKeyServiceClient;
use taskmesh_contracts::identity_v1::identity_service_client::IdentityServiceClient;
use taskmesh_contracts::identity_v1::{LoginRequest, RegisterRequest, Session, User};
use taskmesh_contracts::projects_v1::organization_service_client::OrganizationServiceClient;
use taskmesh_mesh::ConfigLayers;
use taskmesh_testing::SigningKey;
use taskmesh_testing::{NatsServer, Stack, TestDatabase};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

pub(crate) use taskmesh_testing::{reason, violations};

/// The password every test user has.
pub(crate) const PASSWORD: &str = "correct horse battery";

/// The identity service under test, built in this process.
pub(crate) struct OwnIdentity {
    /// gRPC endpoint, `http://127.0.0.1:<port>`.
    pub(crate) endpoint: String,
    /// The key that signs its tokens.
    pub(crate) key: SigningKey,
    /// Its database (and Vault secret path).
    pub(crate) db: TestDatabase,
}

/// Builds an identity app over a fresh database and a signing key provisioned as `make up` does,
/// on `nats_url`; the caller runs it.
async fn build_identity(
    stack: &Stack,
    nats_url: &str,
    customize: impl FnOnce(ConfigLayers) -> ConfigLayers,
) -> (OwnIdentity, taskmesh_identity::App) {
    let db = TestDatabase::create(stack, "identity_test").await;
    let key = taskmesh_testing::identity::provision_key(stack, &db.secret_path).await;
    let layers =
        customize(db.app_layers(taskmesh_identity::Config::default_layers(), stack, nats_url));
    let config = taskmesh_identity::Config::from_layers(&layers).expect("identity config");
    let app = taskmesh_identity::App::build(config)
        .await
        .expect("identity builds");
    let identity = OwnIdentity {
        endpoint: format!("http://{}", app.grpc_addr()),
        key,
        db,
    };
    (identity, app)
}

/// Identity and projects, wired for the registration saga.
pub(crate) struct World {
    pub(crate) stack: Stack,
    pub(crate) identity: OwnIdentity,
    pub(crate) identity_channel: Channel,
    pub(crate) projects_channel: Channel,
    /// Identity's admin port (`/metrics`).
    pub(crate) identity_admin: std::net::SocketAddr,
    projects_layers: ConfigLayers,
    pub(crate) projects_db: TestDatabase,
    _nats: NatsServer,
    _stops: Vec<oneshot::Sender<()>>,
}

impl World {
    /// Both services; identity re-reads its keys every 100 ms and trusts a fetched JWKS for
    /// 300 ms and a resolved API key for 200 ms, so that tests see rotations and revocations fast.
    pub(crate) async fn new() -> Self {
        let mut world = Self::without_projects(|l| l).await;
        world.start_projects().await;
        world
    }

    /// Identity alone (with `customize` on top of [`new`](Self::new)'s settings): projects is
    /// wired but not running until [`start_projects`](Self::start_projects), so registrations
    /// stay pending meanwhile.
    pub(crate) async fn without_projects(
        customize: impl FnOnce(ConfigLayers) -> ConfigLayers,
    ) -> Self {
        let stack = Stack::load();
        let nats = NatsServer::start(&stack).await;
        let (identity, app) = build_identity(&stack, &nats.url(), |l| {
            customize(
                l.set("identity.key_reload_ms", 100)
                    .set("auth.jwks_cache_ms", 300)
                    .set("auth.api_key_cache_ms", 200),
            )
        })
        .await;
        let identity_admin = app.admin_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run(async {
            let _ = stopped.await;
        }));

        let db = TestDatabase::create(&stack, "identity_test_projects").await;
        let projects_addr = format!("127.0.0.1:{}", taskmesh_testing::free_port());
        let projects_layers = db
            .app_layers(
                taskmesh_projects::Config::default_layers(),
                &stack,
                &nats.url(),
            )
            .set("auth.identity_endpoint", identity.endpoint.clone())
            .set("grpc.listen", projects_addr.clone());
        let identity_channel = Channel::from_shared(identity.endpoint.clone())
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Self {
            identity_channel,
            projects_channel: Channel::from_shared(format!("http://{projects_addr}"))
                .expect("uri")
                .connect_lazy(),
            identity_admin,
            projects_layers,
            stack,
            identity,
            projects_db: db,
            _nats: nats,
            _stops: vec![stop],
        }
    }

    /// Starts the projects service (the registration saga's other half).
    pub(crate) async fn start_projects(&mut self) {
        let config =
            taskmesh_projects::Config::from_layers(&self.projects_layers).expect("projects config");
        let projects = taskmesh_projects::App::build(config)
            .await
            .expect("projects");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(projects.run(async {
            let _ = stopped.await;
        }));
        self._stops.push(stop);
    }

    pub(crate) fn identity(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.identity_channel.clone())
    }

    pub(crate) fn api_keys(&self) -> ApiKeyServiceClient<Channel> {
        ApiKeyServiceClient::new(self.identity_channel.clone())
    }

    pub(crate) fn organizations(&self) -> OrganizationServiceClient<Channel> {
        OrganizationServiceClient::new(self.projects_channel.clone())
    }

    /// Registers `username` with `<username>@example.org`.
    pub(crate) async fn register(&self, username: &str) -> Result<User, Status> {
        self.identity()
            .register(RegisterRequest {
                username: username.to_owned(),
                email: format!("{username}@example.org"),
                password: PASSWORD.to_owned(),
                display_name: String::new(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Logs in, waiting (up to 10 s) while the registration saga is still running.
    pub(crate) async fn login(&self, username: &str) -> Session {
        self.login_as(&format!("{username}@example.org")).await
    }

    /// Logs in with `email`, waiting while the registration saga is still running.
    pub(crate) async fn login_as(&self, email: &str) -> Session {
        for _ in 0..100 {
            match self
                .identity()
                .login(LoginRequest {
                    email: email.to_owned(),
                    password: PASSWORD.to_owned(),
                })
                .await
            {
                Ok(session) => return session.into_inner(),
                Err(status) if reason(&status) == "REGISTRATION_PENDING" => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(status) => panic!("login failed: {status:?}"),
            }
        }
        panic!("the registration of {email} never completed");
    }

    /// Registers and logs in.
    pub(crate) async fn signed_up(&self, username: &str) -> Session {
        self.register(username).await.expect("register");
        self.login(username).await
    }
}

/// A request carrying `authorization: Bearer <token>`.
pub(crate) fn bearer<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    request
}

/// A request carrying `x-api-key: <secret>`.
pub(crate) fn api_key<T>(secret: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-api-key", secret.parse().expect("ascii"));
    request
}

/// Retries `check` every 50 ms for up to 5 s until it returns true.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 5 s");
}

/// The code of a result's error, or OK.
pub(crate) fn code<T>(result: &Result<T, Status>) -> Code {
    result.as_ref().err().map_or(Code::Ok, Status::code)
}
