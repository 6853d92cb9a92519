//! The bookings service as the service kit sees it: its name, port, settings and migrations, and
//! the three gRPC services over one store and the marketplace client, and the consumer of the
//! tasks service's events behind the calendar feeds.

use sqlx::migrate::Migrator;
use taskmesh_clients::MarketplaceClient;
use taskmesh_contracts::bookings_v1::availability_service_server::AvailabilityServiceServer;
use taskmesh_contracts::bookings_v1::booking_service_server::BookingServiceServer;
use taskmesh_contracts::bookings_v1::calendar_service_server::CalendarServiceServer;
use taskmesh_service::{NoCommand, Service, Wiring};

use crate::config::Settings;
use crate::error::Error;
use crate::events::{TASKS_DURABLE, TaskEvents};
use crate::grpc::{AvailabilityServiceImpl, BookingsService, CalendarServiceImpl};
use crate::store::Store;

/// The bookings service.
#[derive(Debug)]
pub struct Bookings;

/// The built service (tests build it on ephemeral ports).
pub type App = taskmesh_service::App<Bookings>;

impl Service for Bookings {
    const NAME: &'static str = "bookings";
    const GRPC_PORT: u16 = 50058;
    const MIGRATIONS: &'static Migrator = &sqlx::migrate!("./migrations");
    type Settings = Settings;
    type Command = NoCommand;
    type Error = Error;

    async fn build(wiring: &mut Wiring<Self>) -> Result<(), Error> {
        let settings = wiring.settings().clone();
        let store = Store::new(wiring.pool().clone(), wiring.outbox());
        wiring.consume("tasks", TASKS_DURABLE, TaskEvents::new(store.clone()));
        let marketplace = MarketplaceClient::from_config(&settings.marketplace)
            .map_err(|e| Error::invalid("marketplace.endpoint", e.to_string()))?;
        wiring
            .serve(AvailabilityServiceServer::new(
                AvailabilityServiceImpl::new(store.clone()),
            ))
            .serve(BookingServiceServer::new(BookingsService::new(
                store.clone(),
                marketplace,
                chrono::Duration::minutes(settings.slot_step_minutes),
                settings.max_slot_days,
            )))
            .serve(CalendarServiceServer::new(CalendarServiceImpl::new(store)));
        Ok(())
    }
}
