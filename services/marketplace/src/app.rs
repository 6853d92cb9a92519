//! The marketplace service as the service kit sees it: its name, port, settings and migrations,
//! the four gRPC services over one store, and the consumer of the bookings service's events.

use sqlx::migrate::Migrator;
use taskmesh_contracts::marketplace_v1::category_service_server::CategoryServiceServer;
use taskmesh_contracts::marketplace_v1::listing_service_server::ListingServiceServer;
use taskmesh_contracts::marketplace_v1::provider_service_server::ProviderServiceServer;
use taskmesh_contracts::marketplace_v1::review_service_server::ReviewServiceServer;
use taskmesh_service::{NoCommand, Service, Wiring};

use crate::config::Settings;
use crate::error::Error;
use crate::events;
use crate::grpc::{CategoriesService, ListingsService, ProvidersService, ReviewsService};
use crate::store::Store;

/// The marketplace service.
#[derive(Debug)]
pub struct Marketplace;

/// The built service (tests build it on ephemeral ports).
pub type App = taskmesh_service::App<Marketplace>;

impl Service for Marketplace {
    const NAME: &'static str = "marketplace";
    const GRPC_PORT: u16 = 50059;
    const MIGRATIONS: &'static Migrator = &sqlx::migrate!("./migrations");
    type Settings = Settings;
    type Command = NoCommand;
    type Error = Error;

    async fn build(wiring: &mut Wiring<Self>) -> Result<(), Error> {
        let settings = wiring.settings().clone();
        let store = Store::new(wiring.pool().clone(), wiring.outbox());
        wiring.consume(
            "bookings",
            events::BOOKINGS_DURABLE,
            events::BookingEvents::new(store.clone()),
        );
        let operators = wiring.config().mesh.auth.operators.clone();
        wiring
            .serve(ProviderServiceServer::new(ProvidersService::new(
                store.clone(),
            )))
            .serve(CategoryServiceServer::new(CategoriesService::new(
                store.clone(),
                operators,
            )))
            .serve(ListingServiceServer::new(ListingsService::new(
                store.clone(),
            )))
            .serve(ReviewServiceServer::new(ReviewsService::new(
                store,
                chrono::TimeDelta::days(settings.review_edit_days),
            )));
        Ok(())
    }
}
