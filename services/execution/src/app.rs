//! The execution service as the service kit sees it: its name, port, settings and migrations, and
//! what it wires: the executions gRPC service, the intake consumer on `TASKS` and the workers.
//! Attempts still running when the drain's grace period ends are abandoned; their leases expire
//! and another worker picks them up.

use std::time::Duration;

use sqlx::migrate::Migrator;
use taskmesh_contracts::execution_v1::execution_service_server::ExecutionServiceServer;
use taskmesh_mesh::sealed::Sealer;
use taskmesh_service::{NoCommand, Service, Wiring};

use crate::config::Settings;
use crate::error::Error;
use crate::grpc::{ExecutionsService, WatchLimits};
use crate::store::Store;
use crate::store::changes::Changes;
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
        let keys = wiring.vault().sealing_keys().await?;
        let sealer = Sealer::new(&keys).map_err(|e| Error::Sealing(e.to_string()))?;
        crate::events::consume(wiring, &store, &sealer)?;
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
        // The workers' own connections: a burst of calls cannot keep a worker from renewing its
        // lease, and busy workers cannot starve the calls. Per worker: its claim or outcome, and
        // its lease renewal beside a progress update.
        let worker_pool = taskmesh_mesh::db::pool_options(
            u32::try_from(workers.concurrency * 2 + 1).unwrap_or(u32::MAX),
            wiring.pool().options().get_acquire_timeout(),
        )
        .connect_lazy_with((*wiring.pool().connect_options()).clone());
        let worker_store = Store::new(worker_pool, wiring.outbox());
        for worker in worker::workers(&worker_store, &workers, &egress, &sealer) {
            let name = format!("worker {}", worker.id());
            wiring.spawn(&name, move |stop| async move {
                worker.run(stop.receiver()).await;
                Ok(())
            });
        }
        let projects = wiring.projects_client(&settings.projects)?;
        let changes = Changes::default();
        let (listening, pool) = (changes.clone(), wiring.pool().clone());
        wiring.spawn("change listener", move |mut stop| async move {
            listening
                .listen(&pool, async move { stop.stopped().await })
                .await
                .map_err(Into::into)
        });
        let watches = WatchLimits::new(
            settings.watch.max_streams_per_user,
            Duration::from_secs(settings.watch.max_stream_secs),
        );
        wiring.serve(ExecutionServiceServer::new(ExecutionsService::new(
            store, projects, changes, watches,
        )));
        Ok(())
    }
}
