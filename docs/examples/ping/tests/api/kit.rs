//! The kit's promise about background work, on a real stack: a background task that fails stops
//! the whole service with an error naming it (so a supervisor restarts the process), instead of
//! leaving it serving without the work it needs.

use std::time::Duration;

use sqlx::migrate::Migrator;
use taskmesh_example_ping::pb::ping_service_server::{PingService, PingServiceServer};
use taskmesh_example_ping::pb::{FILE_DESCRIPTOR_SET, PingRequest, PingResponse};
use taskmesh_service::{App, Config, KitError, NoCommand, NoSettings, Service, Wiring};
use taskmesh_testing::{Stack, TestDatabase, with_identity};
use tonic::{Request, Response, Status};

/// A service whose only background task fails after a moment.
struct Flaky;

#[tonic::async_trait]
impl PingService for Flaky {
    async fn ping(&self, _: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        Ok(Response::new(PingResponse::default()))
    }
}

impl Service for Flaky {
    const NAME: &'static str = "flaky";
    const GRPC_PORT: u16 = 50098;
    const MIGRATIONS: &'static Migrator = &sqlx::migrate!("./migrations");
    type Settings = NoSettings;
    type Command = NoCommand;
    type Error = std::convert::Infallible;

    fn descriptor_set() -> &'static [u8] {
        FILE_DESCRIPTOR_SET
    }

    async fn build(wiring: &mut Wiring<Self>) -> Result<(), Self::Error> {
        wiring.serve(PingServiceServer::new(Flaky));
        wiring.spawn("flaky worker", |_stop| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Err("the worker lost its connection".into())
        });
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_background_task_stops_the_service_naming_the_task() {
    let stack = Stack::load();
    let db = TestDatabase::create(&stack, "flaky_test").await;
    let layers =
        with_identity(db.app_layers(Config::<Flaky>::default_layers(), &stack, &stack.nats_url));
    let app = App::<Flaky>::build(Config::from_layers(&layers).expect("config"))
        .await
        .expect("builds");
    let ran = tokio::time::timeout(Duration::from_secs(20), app.run(std::future::pending()))
        .await
        .expect("the service stopped by itself");
    match ran {
        Err(KitError::Background { task, why }) => {
            assert_eq!(task, "flaky worker");
            assert!(why.contains("lost its connection"), "{why}");
        }
        other => panic!("expected the background failure, got {other:?}"),
    }
}
