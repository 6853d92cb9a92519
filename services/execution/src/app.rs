//! The execution service as the service kit sees it: its name, port, settings and migrations, and
//! what it wires: the executions gRPC service, the intake consumer on `TASKS` and the workers.
//! Attempts still running when the drain's grace period ends are abandoned; their leases expire
//! and another worker picks them up.

use std::time::Duration;

use sqlx::migrate::Migrator;
use taskmesh_clients::projects::ProjectsClient;
use taskmesh_contracts::execution_v1::execution_service_server::ExecutionServiceServer;
use taskmesh_service::{NoCommand, Service, Wiring};

use crate::config::Settings;
use crate::error::Error;
use crate::grpc::ExecutionsService;
use crate::store::Store;
use crate::worker::{self, WorkerConfig};

/// The execution service.
#[derive(Debug)]
pub struct Execution;

/// The built service (tests build it on ephemeral ports).
pub type App = taskmesh_service::App<Execution>;

impl Service for Execution {
    const NAME: &'static str = "execution";
    const GRPC_PORT: u16 = 50054;
    const MIGRATIONS: &'static Migrator = &sqlx::migrate!("./migrations");
    type Settings = Settings;
    type Command = NoCommand;
    type Error = Error;

    async fn build(wiring: &mut Wiring<Self>) -> Result<(), Error> {
        let settings = wiring.settings().clone();
        let store = Store::new(wiring.pool().clone(), wiring.outbox());
        crate::events::consume(wiring, &store);
        let workers = WorkerConfig {
            concurrency: settings.workers.concurrency,
            lease: settings.workers.lease(),
            poll: Duration::from_millis(settings.workers.poll_ms),
            per_project: settings.workers.per_project(),
            id: format!(
                "{}-{}-{}",
                Self::NAME,
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
        };
        let egress = taskmesh_mesh::egress::Egress::new(&settings.egress, "taskmesh-execution")?;
        for worker in worker::workers(&store, &workers, &egress) {
            let name = format!("worker {}", worker.id());
            wiring.spawn(&name, move |stop| async move {
                worker.run(stop.receiver()).await;
                Ok(())
            });
        }
        let projects = ProjectsClient::from_config(&settings.projects)?;
        wiring.serve(ExecutionServiceServer::new(ExecutionsService::new(
            store, projects,
        )));
        Ok(())
    }
}
