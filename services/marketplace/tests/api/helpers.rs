//! Harness: a marketplace app on its own database and NATS server, with `users/operator` as the
//! platform's operator; clients acting as a given user; a catalogue to start from; completed
//! bookings published on the `BOOKINGS` stream as the bookings service publishes them.

use std::time::Duration;

use prost::{Message, Name};
use taskmesh_contracts::bookings_v1::{Booking, BookingCompleted, booking};
use taskmesh_contracts::marketplace_v1::category_service_client::CategoryServiceClient;
use taskmesh_contracts::marketplace_v1::listing_service_client::ListingServiceClient;
use taskmesh_contracts::marketplace_v1::provider_service_client::ProviderServiceClient;
use taskmesh_contracts::marketplace_v1::review_service_client::ReviewServiceClient;
use taskmesh_contracts::marketplace_v1::{
    Category, CreateCategoryRequest, CreateListingRequest, CreateProviderRequest, Listing, Money,
    Provider, listing::State,
};
use taskmesh_mesh::ConfigLayers;
use taskmesh_testing::{
    Authed, DefaultCaller, NatsServer, RunningApp, Stack, TestDatabase, channel,
};

/// The operator of every world.
pub(crate) const OPERATOR: &str = "operator";

/// A running marketplace app with what it stands on.
pub(crate) struct World {
    nats: NatsServer,
    pub(crate) db: TestDatabase,
    pub(crate) stack: Stack,
    pub(crate) app: RunningApp,
}

/// Clients of the four services, as one user.
pub(crate) struct Clients {
    pub(crate) providers: ProviderServiceClient<Authed>,
    pub(crate) categories: CategoryServiceClient<Authed>,
    pub(crate) listings: ListingServiceClient<Authed>,
    pub(crate) reviews: ReviewServiceClient<Authed>,
}

impl World {
    /// The app with its default settings, on a database named `database`.
    pub(crate) async fn new(database: &str) -> Self {
        Self::with(database, |layers| layers).await
    }

    /// The app with settings changed by `customize`.
    pub(crate) async fn with(database: &str, customize: fn(ConfigLayers) -> ConfigLayers) -> Self {
        let stack = Stack::load();
        let nats = NatsServer::start(&stack).await;
        let db = TestDatabase::create(&stack, database).await;
        let layers = customize(
            taskmesh_testing::with_identity(db.app_layers(
                taskmesh_marketplace::Config::default_layers(),
                &stack,
                &nats.url(),
            ))
            .set("auth.operators", vec![format!("users/{OPERATOR}")]),
        );
        let app = taskmesh_marketplace::App::build(
            taskmesh_marketplace::Config::from_layers(&layers).expect("marketplace config"),
        )
        .await
        .expect("marketplace app");
        Self {
            nats,
            db,
            stack,
            app: RunningApp::start(app),
        }
    }

    /// Clients calling as `user`.
    pub(crate) async fn as_user(&self, user: &'static str) -> Clients {
        let channel = channel(self.app.addr).await;
        Clients {
            providers: ProviderServiceClient::with_interceptor(
                channel.clone(),
                DefaultCaller(user),
            ),
            categories: CategoryServiceClient::with_interceptor(
                channel.clone(),
                DefaultCaller(user),
            ),
            listings: ListingServiceClient::with_interceptor(channel.clone(), DefaultCaller(user)),
            reviews: ReviewServiceClient::with_interceptor(channel, DefaultCaller(user)),
        }
    }

    /// Publishes that `customer` (`users/{user}`) completed `booking` of `listing`, as the bookings
    /// service does, and waits until the marketplace has recorded it.
    pub(crate) async fn complete_booking(&self, booking: &str, listing: &str, customer: &str) {
        let client = async_nats::connect(self.nats.url())
            .await
            .expect("connect NATS");
        let jetstream = async_nats::jetstream::new(client);
        let event = BookingCompleted {
            booking: Some(Booking {
                name: booking.to_owned(),
                listing: listing.to_owned(),
                customer: customer.to_owned(),
                state: booking::State::Completed as i32,
                update_time: Some(taskmesh_mesh::time::now()),
                ..Default::default()
            }),
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            taskmesh_events::headers::EVENT_TYPE,
            BookingCompleted::full_name().as_str(),
        );
        headers.insert(
            taskmesh_events::headers::MSG_ID,
            uuid::Uuid::now_v7().to_string().as_str(),
        );
        let subject = taskmesh_events::subject_of::<BookingCompleted>();
        let payload = event.encode_to_vec();
        // The stream exists once the marketplace's consumer has started.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let sent = jetstream
                .publish_with_headers(subject.clone(), headers.clone(), payload.clone().into())
                .await;
            let acknowledged = match sent {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            };
            if acknowledged {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "could not publish to BOOKINGS"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let pool = self.db.pool(&self.stack).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let seen: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM completed_bookings WHERE booking = $1)",
            )
            .bind(booking)
            .fetch_one(&pool)
            .await
            .expect("read completed bookings");
            if seen {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{booking} never recorded"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Makes `user` a provider, public or not.
pub(crate) async fn provider(clients: &mut Clients, public: bool) -> Provider {
    clients
        .providers
        .create_provider(CreateProviderRequest {
            provider: Some(Provider {
                display_name: "Ann's studio".into(),
                time_zone: "Europe/Berlin".into(),
                public,
                ..Default::default()
            }),
        })
        .await
        .expect("create provider")
        .into_inner()
}

/// Creates category `id` under `parent` (empty at the top) as the operator.
pub(crate) async fn category(operator: &mut Clients, id: &str, parent: &str) -> Category {
    operator
        .categories
        .create_category(CreateCategoryRequest {
            category_id: id.into(),
            category: Some(Category {
                display_name: id.into(),
                parent: parent.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("create category")
        .into_inner()
}

/// A published listing of the caller's provider `parent` in `category`.
pub(crate) fn new_listing(title: &str, category: &str, euros: i64) -> Listing {
    Listing {
        title: title.into(),
        description: format!("{title}, booked by the hour"),
        category: category.into(),
        price: Some(Money {
            currency_code: "EUR".into(),
            units: euros,
            nanos: 0,
        }),
        duration: Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        }),
        remote: true,
        state: State::Published as i32,
        ..Default::default()
    }
}

/// Creates `listing` under `parent`.
pub(crate) async fn listing(clients: &mut Clients, parent: &str, listing: Listing) -> Listing {
    clients
        .listings
        .create_listing(CreateListingRequest {
            parent: parent.into(),
            listing: Some(listing),
            request_id: String::new(),
        })
        .await
        .expect("create listing")
        .into_inner()
}
