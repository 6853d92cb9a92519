//! The tasks service as the service kit sees it: its name, port, settings, migrations and the
//! `rebuild-read-model` command, and what it wires: the task and admin gRPC services over the event
//! store, the read-model projector on its own stream and the job-status projector on `EXECUTION`.

use sqlx::migrate::Migrator;
use taskmesh_contracts::tasks_v1::task_admin_service_server::TaskAdminServiceServer;
use taskmesh_contracts::tasks_v1::task_service_server::TaskServiceServer;
use taskmesh_mesh::sealed::Sealer;
use taskmesh_service::{BoxError, CommandContext, Service, Wiring};

use crate::config::Settings;
use crate::error::Error;
use crate::grpc::service::Tasks as TaskCommands;
use crate::grpc::{TaskAdmin, TasksService};
use crate::store::event_store::EventStore;
use crate::store::read_model;

/// The tasks service.
#[derive(Debug)]
pub struct Tasks;

/// The built service (tests build it on ephemeral ports).
pub type App = taskmesh_service::App<Tasks>;

/// The operator commands of the `tasks` binary.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Empties the read model, replays every stored event into it and exits.
    RebuildReadModel,
}

impl Service for Tasks {
    const NAME: &'static str = "tasks";
    const GRPC_PORT: u16 = 50053;
    const MIGRATIONS: &'static Migrator = &sqlx::migrate!("./migrations");
    type Settings = Settings;
    type Command = Command;
    type Error = Error;

    async fn build(wiring: &mut Wiring<Self>) -> Result<(), Error> {
        let settings = wiring.settings().clone();
        let projects = wiring.projects_client(&settings.projects)?;
        let pool = wiring.pool().clone();
        let keys = wiring.vault().sealing_keys().await?;
        let sealer = Sealer::new(&keys).map_err(|e| Error::Sealing(e.to_string()))?;
        let tasks = TaskCommands::new(
            EventStore::new(pool.clone(), wiring.outbox()),
            projects,
            settings.limits,
            sealer,
        );
        crate::events::consume(wiring, &tasks);
        let operators = wiring.config().mesh.auth.operators.clone();
        wiring
            .serve(TaskServiceServer::new(TasksService::new(tasks)))
            .serve(TaskAdminServiceServer::new(TaskAdmin::new(pool, operators)));
        Ok(())
    }

    async fn command(command: Command, context: CommandContext<Self>) -> Result<(), BoxError> {
        match command {
            Command::RebuildReadModel => {
                let pool = context.database().await?;
                let (events, tasks) = read_model::rebuild(&pool).await?;
                pool.close().await;
                println!("read model rebuilt: {events} events replayed, {tasks} tasks");
                Ok(())
            }
        }
    }
}
