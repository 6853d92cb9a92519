//! `ping`: the smallest service on the service kit. It declares itself ([`Ping`]) and handles one
//! RPC that writes a row and publishes an event in the same transaction; the kit does the rest.

use sqlx::{PgPool, migrate::Migrator};
use taskmesh_events::{Outbox, OutgoingEvent};
use taskmesh_mesh::{CallContext, status::db_error};
use taskmesh_service::{NoCommand, NoSettings, Service, Wiring};
use tonic::{Request, Response, Status};

/// The generated contract.
pub mod pb {
    tonic::include_proto!("taskmesh.ping.v1");
    /// Its descriptor set, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ping.bin"));
}
use pb::ping_service_server::{PingService, PingServiceServer};
use pb::{PingRequest, PingResponse, Pinged};

/// The service's declaration.
#[derive(Debug)]
pub struct Ping;
/// The built service.
pub type App = taskmesh_service::App<Ping>;
/// Its configuration.
pub type Config = taskmesh_service::Config<Ping>;

impl Service for Ping {
    const NAME: &'static str = "ping";
    const GRPC_PORT: u16 = 50099;
    const MIGRATIONS: &'static Migrator = &sqlx::migrate!("./migrations");
    type Settings = NoSettings;
    type Command = NoCommand;
    type Error = std::convert::Infallible;

    fn descriptor_set() -> &'static [u8] {
        pb::FILE_DESCRIPTOR_SET
    }

    async fn build(wiring: &mut Wiring<Self>) -> Result<(), Self::Error> {
        let (pool, outbox) = (wiring.pool().clone(), wiring.outbox());
        wiring.serve(PingServiceServer::new(Handler { pool, outbox }));
        Ok(())
    }
}

struct Handler {
    pool: PgPool,
    outbox: Outbox,
}

#[tonic::async_trait]
impl PingService for Handler {
    async fn ping(&self, request: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        let context = CallContext::of(&request);
        let message = request.into_inner().message;
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        sqlx::query("INSERT INTO pings (caller, message) VALUES ($1, $2)")
            .bind(&context.caller)
            .bind(&message)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM pings")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let user = context.caller.clone();
        let pinged = Pinged {
            user: user.clone(),
            message: message.clone(),
        };
        let event = OutgoingEvent::new(&user, &pinged).caused_by(&context.correlation_id, "");
        self.outbox
            .enqueue(&mut tx, &event)
            .await
            .map_err(Status::from)?;
        tx.commit().await.map_err(db_error)?;
        self.outbox.wake();
        Ok(Response::new(PingResponse { message, count }))
    }
}
