//! The notes service as the service kit sees it: its name, port, settings and migrations, and the
//! gRPC service it serves.

use sqlx::migrate::Migrator;
use taskmesh_clients::{ProjectsClient, TasksClient};
use taskmesh_contracts::notes_v1::note_service_server::NoteServiceServer;
use taskmesh_events::consumer::ConsumerSpec;
use taskmesh_service::{BoxError, NoCommand, Service, Stop, Wiring};

use crate::config::Settings;
use crate::error::Error;
use crate::events;
use crate::grpc::{NotesService, Targets};
use crate::store::Store;

/// The notes service.
#[derive(Debug)]
pub struct Notes;

/// The built service (tests build it on ephemeral ports).
pub type App = taskmesh_service::App<Notes>;

impl Service for Notes {
    const NAME: &'static str = "notes";
    const GRPC_PORT: u16 = 50057;
    const MIGRATIONS: &'static Migrator = &sqlx::migrate!("./migrations");
    type Settings = Settings;
    type Command = NoCommand;
    type Error = Error;

    async fn build(wiring: &mut Wiring<Self>) -> Result<(), Error> {
        let settings = wiring.settings().clone();
        let store = Store::new(wiring.pool().clone());
        let spec = |wiring: &Wiring<Self>, context: &str, durable: &str| {
            ConsumerSpec::new(
                wiring.stream_of(context),
                durable,
                &format!("taskmesh.{context}.v1.>"),
            )
        };
        let projects_spec = spec(wiring, "projects", events::PROJECTS_DURABLE);
        wiring.consume_with(projects_spec, events::ProjectEvents::new(store.clone()));
        let tasks_spec = spec(wiring, "tasks", events::TASKS_DURABLE);
        wiring.consume_with(tasks_spec, events::TaskEvents::new(store.clone()));
        let projects = ProjectsClient::from_config(&settings.projects)
            .map_err(|e| Error::invalid("projects.endpoint", e.to_string()))?;
        let tasks = TasksClient::from_config(&settings.tasks)
            .map_err(|e| Error::invalid("tasks.endpoint", e.to_string()))?;
        let purging = store.clone();
        wiring.spawn("purger", move |stop| purge(purging, stop));
        wiring.serve(NoteServiceServer::new(NotesService::new(
            store,
            Targets { projects, tasks },
            chrono::TimeDelta::days(settings.keep_deleted_days),
            settings.attachments,
        )));

        Ok(())
    }
}

/// Removes deleted notes whose time has come, with their attachments, every minute.
async fn purge(store: Store, mut stop: Stop) -> Result<(), BoxError> {
    loop {
        match store.purge_due(500).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged deleted notes"),
            Err(err) => tracing::warn!(error = %err, "purging deleted notes failed; trying again"),
        }
        tokio::select! {
            () = stop.stopped() => return Ok(()),
            () = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
        }
    }
}
