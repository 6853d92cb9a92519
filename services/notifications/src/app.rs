//! The notifications service as the service kit sees it: its name, port, settings and migrations,
//! and what it wires: the inbox and webhook gRPC services, the consumers of every other service's
//! events, the inbox listener behind the streams, and the email, webhook and agenda loops.

use sqlx::migrate::Migrator;
use taskmesh_contracts::notifications_v1::notification_service_server::NotificationServiceServer;
use taskmesh_contracts::notifications_v1::webhook_service_server::WebhookServiceServer;
use taskmesh_mesh::egress::Egress;
use taskmesh_mesh::sealed::Sealer;
use taskmesh_service::{NoCommand, Service, Wiring};

use crate::config::Settings;
use crate::dispatch::email::{Mailer, SmtpSecret};
use crate::dispatch::{agenda, email, webhooks};
use crate::error::Error;
use crate::events::{Deliverer, Wake};
use crate::grpc::NotificationsService;
use crate::grpc::stream::Hub;
use crate::grpc::webhooks::WebhooksService;
use crate::store::Store;
use crate::store::inbox::Making;

/// The notifications service.
#[derive(Debug)]
pub struct Notifications;

/// The built service (tests build it on ephemeral ports).
pub type App = taskmesh_service::App<Notifications>;

impl Service for Notifications {
    const NAME: &'static str = "notifications";
    const GRPC_PORT: u16 = 50056;
    const MIGRATIONS: &'static Migrator = &sqlx::migrate!("./migrations");
    type Settings = Settings;
    type Command = NoCommand;
    type Error = Error;

    async fn build(wiring: &mut Wiring<Self>) -> Result<(), Error> {
        let settings = wiring.settings().clone();
        let store = Store::new(wiring.pool().clone());
        let keys = wiring.vault().sealing_keys().await?;
        let sealer = Sealer::new(&keys).map_err(|e| Error::Sealing(e.to_string()))?;
        let smtp: SmtpSecret = wiring
            .vault()
            .read_secret("smtp")
            .await
            .map_err(|e| Error::Smtp(e.to_string()))?;
        let mailer = Mailer::new(&smtp, &settings.public_url, settings.email.connections)?;
        let egress = Egress::new(&settings.webhooks.egress, "taskmesh-webhooks/1")
            .map_err(|e| Error::invalid("webhooks.egress", e.to_string()))?;
        let making = Making {
            public_url: settings.public_url.clone(),
            agenda_time: settings.agenda.time(),
        };
        let wake = Wake::default();
        let deliverer = Deliverer {
            store: store.clone(),
            making: making.clone(),
            wake: wake.clone(),
        };
        crate::events::consume(wiring, &deliverer);

        let hub = Hub::new(settings.max_streams_per_user);
        let listening = std::sync::Arc::clone(&hub);
        let pool = wiring.pool().clone();
        wiring.spawn("inbox listener", move |stop| async move {
            listening
                .listen(&pool, stop.receiver())
                .await
                .map_err(Into::into)
        });
        let (mail_store, mail_settings, mail_wake) =
            (store.clone(), settings.email.clone(), wake.email.clone());
        wiring.spawn("email", move |stop| async move {
            email::run(
                mail_store,
                mailer,
                mail_settings,
                mail_wake,
                stop.receiver(),
            )
            .await;
            Ok(())
        });
        let sender = webhooks::Sender {
            store: store.clone(),
            egress: egress.clone(),
            sealer: sealer.clone(),
            settings: settings.webhooks.clone(),
            making,
            wake: wake.clone(),
        };
        let hook_wake = wake.webhooks.clone();
        wiring.spawn("webhooks", move |stop| async move {
            webhooks::run(sender, hook_wake, stop.receiver()).await;
            Ok(())
        });
        let agenda_settings = settings.agenda.clone();
        wiring.spawn("daily agenda", move |stop| async move {
            agenda::run(deliverer, agenda_settings, stop.receiver()).await;
            Ok(())
        });

        let projects = wiring.projects_client(&settings.projects)?;
        wiring
            .serve(NotificationServiceServer::new(NotificationsService::new(
                store.clone(),
                hub,
                settings.agenda.time(),
            )))
            .serve(WebhookServiceServer::new(WebhooksService::new(
                store,
                projects,
                egress,
                sealer,
                settings.webhooks.max_per_project,
                wake.webhooks,
            )));
        Ok(())
    }
}
