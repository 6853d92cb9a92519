//! The projects service as the service kit sees it: its name, port, settings and migrations, and
//! what it wires: the four gRPC services over one store, and the registration-saga consumer.

use sqlx::migrate::Migrator;
use taskmesh_contracts::projects_v1::board_service_server::BoardServiceServer;
use taskmesh_contracts::projects_v1::member_service_server::MemberServiceServer;
use taskmesh_contracts::projects_v1::organization_service_server::OrganizationServiceServer;
use taskmesh_contracts::projects_v1::project_service_server::ProjectServiceServer;
use taskmesh_service::{NoCommand, Service, Wiring};

use crate::config::Settings;
use crate::error::Error;
use crate::grpc::{BoardsService, MembersService, OrganizationsService, ProjectsService};
use crate::store::Store;

/// The projects service.
#[derive(Debug)]
pub struct Projects;

/// The built service (tests build it on ephemeral ports).
pub type App = taskmesh_service::App<Projects>;

impl Service for Projects {
    const NAME: &'static str = "projects";
    const GRPC_PORT: u16 = 50052;
    const MIGRATIONS: &'static Migrator = &sqlx::migrate!("./migrations");
    type Settings = Settings;
    type Command = NoCommand;
    type Error = Error;

    async fn build(wiring: &mut Wiring<Self>) -> Result<(), Error> {
        let store = Store::new(
            wiring.pool().clone(),
            wiring.outbox(),
            wiring.settings().limits.clone(),
        );
        crate::events::consume(wiring, &store);
        wiring
            .serve(OrganizationServiceServer::new(OrganizationsService::new(
                store.clone(),
            )))
            .serve(ProjectServiceServer::new(ProjectsService::new(
                store.clone(),
            )))
            .serve(BoardServiceServer::new(BoardsService::new(store.clone())))
            .serve(MemberServiceServer::new(MembersService::new(store)));
        Ok(())
    }
}
