//! Harness: a marketplace app and a bookings app on their own databases and one NATS server, a
//! public provider `ann` in Berlin with an hour-long published listing, and clients acting as a
//! given user.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use taskmesh_contracts::bookings_v1::availability_service_client::AvailabilityServiceClient;
use taskmesh_contracts::bookings_v1::booking_service_client::BookingServiceClient;
use taskmesh_contracts::bookings_v1::calendar_service_client::CalendarServiceClient;
use taskmesh_contracts::bookings_v1::{
    Availability, Booking, CreateBookingRequest, TimeRange, UpdateAvailabilityRequest, WeeklyHours,
};
use taskmesh_contracts::marketplace_v1::category_service_client::CategoryServiceClient;
use taskmesh_contracts::marketplace_v1::listing_service_client::ListingServiceClient;
use taskmesh_contracts::marketplace_v1::provider_service_client::ProviderServiceClient;
use taskmesh_contracts::marketplace_v1::{
    Category, CreateCategoryRequest, CreateListingRequest, CreateProviderRequest, Listing, Money,
    Provider, listing::State,
};
use taskmesh_testing::{
    Authed, DefaultCaller, NatsServer, RunningApp, Stack, TestDatabase, channel,
};
use tonic::Status;

/// The provider of every world.
pub(crate) const PROVIDER: &str = "ann";

/// A marketplace and a bookings app.
pub(crate) struct World {
    pub(crate) nats: NatsServer,
    _marketplace_db: TestDatabase,
    pub(crate) db: TestDatabase,
    pub(crate) stack: Stack,
    _marketplace: RunningApp,
    pub(crate) app: RunningApp,
    /// `ann`'s listing, an hour long.
    pub(crate) listing: String,
}

/// Clients of the bookings service as one user.
#[derive(Clone)]
pub(crate) struct Clients {
    pub(crate) bookings: BookingServiceClient<Authed>,
    pub(crate) availability: AvailabilityServiceClient<Authed>,
    pub(crate) calendar: CalendarServiceClient<Authed>,
}

impl World {
    /// Both apps, `ann` a provider working every day from 08:00 to 20:00 Berlin time with a
    /// buffer of `buffer_minutes`.
    pub(crate) async fn new(database: &str, buffer_minutes: i64) -> Self {
        let stack = Stack::load();
        let nats = NatsServer::start(&stack).await;
        let marketplace_db = TestDatabase::create(&stack, &format!("{database}_mp")).await;
        let layers = taskmesh_testing::with_identity(marketplace_db.app_layers(
            taskmesh_marketplace::Config::default_layers(),
            &stack,
            &nats.url(),
        ))
        .set("auth.operators", vec!["users/operator"]);
        let marketplace = RunningApp::start(
            taskmesh_marketplace::App::build(
                taskmesh_marketplace::Config::from_layers(&layers).expect("marketplace config"),
            )
            .await
            .expect("marketplace app"),
        );
        let db = TestDatabase::create(&stack, database).await;
        let layers = taskmesh_testing::with_identity(db.app_layers(
            taskmesh_bookings::Config::default_layers(),
            &stack,
            &nats.url(),
        ))
        .set(
            "marketplace.endpoint",
            format!("http://{}", marketplace.addr),
        );
        let app = RunningApp::start(
            taskmesh_bookings::App::build(
                taskmesh_bookings::Config::from_layers(&layers).expect("bookings config"),
            )
            .await
            .expect("bookings app"),
        );
        let channel = channel(marketplace.addr).await;
        let mut categories =
            CategoryServiceClient::with_interceptor(channel.clone(), DefaultCaller("operator"));
        categories
            .create_category(CreateCategoryRequest {
                category_id: "fitness".into(),
                category: Some(Category {
                    display_name: "Fitness".into(),
                    ..Default::default()
                }),
            })
            .await
            .expect("category");
        ProviderServiceClient::with_interceptor(channel.clone(), DefaultCaller(PROVIDER))
            .create_provider(CreateProviderRequest {
                provider: Some(Provider {
                    display_name: "Ann's studio".into(),
                    time_zone: "Europe/Berlin".into(),
                    public: true,
                    ..Default::default()
                }),
            })
            .await
            .expect("provider");
        let listing = ListingServiceClient::with_interceptor(channel, DefaultCaller(PROVIDER))
            .create_listing(CreateListingRequest {
                parent: format!("providers/{PROVIDER}"),
                listing: Some(Listing {
                    title: "Yoga".into(),
                    category: "categories/fitness".into(),
                    price: Some(Money {
                        currency_code: "EUR".into(),
                        units: 30,
                        nanos: 0,
                    }),
                    duration: Some(prost_types::Duration {
                        seconds: 3600,
                        nanos: 0,
                    }),
                    remote: true,
                    state: State::Published as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("listing")
            .into_inner()
            .name;
        let world = Self {
            nats,
            _marketplace_db: marketplace_db,
            db,
            stack,
            _marketplace: marketplace,
            app,
            listing,
        };
        let every_day = (1..=7)
            .map(|day| WeeklyHours {
                day,
                hours: Some(TimeRange {
                    start_time: "08:00".into(),
                    end_time: "20:00".into(),
                }),
            })
            .collect();
        world
            .as_user(PROVIDER)
            .await
            .availability
            .update_availability(UpdateAvailabilityRequest {
                availability: Some(Availability {
                    name: format!("providers/{PROVIDER}/availability"),
                    weekly_hours: every_day,
                    buffer: Some(prost_types::Duration {
                        seconds: buffer_minutes * 60,
                        nanos: 0,
                    }),
                    horizon_days: 365,
                    ..Default::default()
                }),
                update_mask: None,
            })
            .await
            .expect("availability");
        world
    }

    /// Publishes `event` about `resource` as its service would (the subject and type from its
    /// protobuf name, a fresh event id), once the stream exists.
    pub(crate) async fn publish<M: prost::Name>(&self, resource: &str, event: &M) {
        let client = async_nats::connect(self.nats.url())
            .await
            .expect("connect NATS");
        let jetstream = async_nats::jetstream::new(client);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            taskmesh_events::headers::EVENT_TYPE,
            M::full_name().as_str(),
        );
        headers.insert(
            taskmesh_events::headers::MSG_ID,
            uuid::Uuid::now_v7().to_string().as_str(),
        );
        headers.insert(taskmesh_events::headers::SUBJECT, resource);
        let subject = taskmesh_events::subject_of::<M>();
        let payload = event.encode_to_vec();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let sent = jetstream
                .publish_with_headers(subject.clone(), headers.clone(), payload.clone().into())
                .await;
            let acknowledged = match sent {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            };
            if acknowledged {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "could not publish {subject}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Clients calling as `user`.
    pub(crate) async fn as_user(&self, user: &'static str) -> Clients {
        let channel = channel(self.app.addr).await;
        Clients {
            bookings: BookingServiceClient::with_interceptor(channel.clone(), DefaultCaller(user)),
            availability: AvailabilityServiceClient::with_interceptor(
                channel.clone(),
                DefaultCaller(user),
            ),
            calendar: CalendarServiceClient::with_interceptor(channel, DefaultCaller(user)),
        }
    }

    /// Books `start` as the client's user.
    pub(crate) async fn book(
        &self,
        clients: &mut Clients,
        start: DateTime<Utc>,
    ) -> Result<Booking, Status> {
        clients
            .bookings
            .create_booking(CreateBookingRequest {
                parent: format!("providers/{PROVIDER}"),
                booking: Some(Booking {
                    listing: self.listing.clone(),
                    start_time: Some(taskmesh_mesh::time::to_timestamp(start)),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .map(tonic::Response::into_inner)
    }
}

/// `hour:minute` Berlin time on a winter date a week or more ahead (Berlin is UTC+1 in winter
/// and the dates chosen stay in winter time: from 1 November to 20 March).
pub(crate) fn berlin(day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    day.and_hms_opt(hour, minute, 0).expect("a time").and_utc() - Duration::hours(1)
}

/// A winter day at least a week ahead, in Berlin's standard time.
pub(crate) fn a_day_ahead() -> NaiveDate {
    let mut day = (Utc::now() + Duration::days(8)).date_naive();
    while !(day.month() >= 11 || day.month() <= 2 || (day.month() == 3 && day.day() <= 20)) {
        day += Duration::days(1);
    }
    day
}

/// The `ErrorInfo` reason of `status`, if any.
pub(crate) fn reason(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}
