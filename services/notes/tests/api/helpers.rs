//! Harness: a notes app on its own database and NATS server, trusting tokens as identity issues
//! them, and clients acting as a given user.

use taskmesh_contracts::notes_v1::note_service_client::NoteServiceClient;
use taskmesh_mesh::ConfigLayers;
use taskmesh_testing::{
    Authed, DefaultCaller, NatsServer, RunningApp, Stack, TestDatabase, channel,
};

/// A running notes app with what it stands on.
pub(crate) struct World {
    _nats: NatsServer,
    pub(crate) db: TestDatabase,
    pub(crate) stack: Stack,
    pub(crate) app: RunningApp,
}

impl World {
    /// The app with its default settings, on a database named `database`.
    pub(crate) async fn new(database: &str) -> Self {
        Self::with(database, |layers| layers).await
    }

    /// The app with settings changed by `customize`.
    pub(crate) async fn with(database: &str, customize: fn(ConfigLayers) -> ConfigLayers) -> Self {
        let stack = Stack::load();
        let nats = NatsServer::start(&stack).await;
        let db = TestDatabase::create(&stack, database).await;
        let layers = customize(taskmesh_testing::with_identity(db.app_layers(
            taskmesh_notes::Config::default_layers(),
            &stack,
            &nats.url(),
        )));
        let app = taskmesh_notes::App::build(
            taskmesh_notes::Config::from_layers(&layers).expect("notes config"),
        )
        .await
        .expect("notes app");
        Self {
            _nats: nats,
            db,
            stack,
            app: RunningApp::start(app),
        }
    }

    /// A client calling as `user`.
    pub(crate) async fn client(&self, user: &'static str) -> NoteServiceClient<Authed> {
        NoteServiceClient::with_interceptor(channel(self.app.addr).await, DefaultCaller(user))
    }
}
