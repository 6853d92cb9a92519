//! The scheduler as the service kit sees it: its name, port, settings and migrations, and what it
//! wires: the schedules and reminders gRPC services, the firer, and the consumers of the projects
//! and tasks services' events.

use std::sync::Arc;

use sqlx::migrate::Migrator;
use taskmesh_contracts::scheduler_v1::reminder_service_server::ReminderServiceServer;
use taskmesh_contracts::scheduler_v1::schedule_service_server::ScheduleServiceServer;
use taskmesh_mesh::sealed::Sealer;
use taskmesh_service::{NoCommand, Service, Wiring};
use tokio::sync::Notify;

use crate::config::Settings;
use crate::error::Error;
use crate::firer::{Firer, FirerMetrics};
use crate::grpc::SchedulesService;
use crate::grpc::reminders::RemindersService;
use crate::store::Store;

/// The scheduler service.
#[derive(Debug)]
pub struct Scheduler;

/// The built service (tests build it on ephemeral ports).
pub type App = taskmesh_service::App<Scheduler>;

impl Service for Scheduler {
    const NAME: &'static str = "scheduler";
    const GRPC_PORT: u16 = 50055;
    const MIGRATIONS: &'static Migrator = &sqlx::migrate!("./migrations");
    type Settings = Settings;
    type Command = NoCommand;
    type Error = Error;

    async fn build(wiring: &mut Wiring<Self>) -> Result<(), Error> {
        let settings = wiring.settings().clone();
        let store = Store::new(wiring.pool().clone(), wiring.outbox());
        let keys = wiring.vault().sealing_keys().await?;
        let sealer = Sealer::new(&keys).map_err(|e| Error::Sealing(e.to_string()))?;
        crate::events::consume(wiring, &store);
        let wake = Arc::new(Notify::new());
        let firer = Firer::new(
            store.clone(),
            settings.firing.clone(),
            Arc::clone(&wake),
            FirerMetrics::register(wiring.metrics()),
        );
        wiring.spawn("firer", move |stop| async move {
            firer.run(stop.receiver()).await;
            Ok(())
        });
        let projects = wiring.projects_client(&settings.projects)?;
        wiring
            .serve(ReminderServiceServer::new(RemindersService::new(
                store.clone(),
                projects.clone(),
            )))
            .serve(ScheduleServiceServer::new(SchedulesService::new(
                store,
                projects,
                sealer,
                wake,
                settings.limits.max_schedules_per_project,
            )));
        Ok(())
    }
}
