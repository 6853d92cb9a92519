//! Slots benchmark (not a test): `ListSlots` for a busy provider, next to the SQL under it.
//!
//! Needs the local stack (`make infra`) and a release identity binary beside the bench
//! (`cargo build --release --bin identity`); then `cargo bench -p taskmesh-bookings --bench slots`.
//!
//! One process runs a marketplace app and a bookings app on fresh databases; a provider in
//! Europe/Berlin works around the clock every day, with a 15-minute buffer, and holds
//! `BENCH_BOOKINGS` bookings (default 500) of an hour, spread evenly over the 31 days asked for. Then, in interleaved rounds, the
//! same 31-day question three ways:
//!
//! - **ListSlots**: the RPC over gRPC (token checked; the listing and the provider's zone asked of
//!   the marketplace over gRPC; availability and held ranges read; slots computed);
//! - **service work**: the same without gRPC and the marketplace: availability and held ranges
//!   from the store, slots computed;
//! - **bare SQL**: the held-ranges query alone.
//!
//! Each row is the mode's median round (p50/p99 over `BENCH_CALLS` calls, default 300).

use chrono::{Days, NaiveDate, Utc};
use taskmesh_bookings::domain::slots::{Search, instant};
use taskmesh_bookings::store::Store;
use taskmesh_contracts::bookings_v1::ListSlotsRequest;
use taskmesh_contracts::bookings_v1::booking_service_client::BookingServiceClient;
use taskmesh_testing::bench::{Round, medians, print_modes, round, setting};
use taskmesh_testing::{DefaultCaller, NatsServer, RunningApp, Stack, TestDatabase, channel};

#[tokio::main]
async fn main() {
    let bookings = setting("BENCH_BOOKINGS", 500);
    let calls = setting("BENCH_CALLS", 300);
    let rounds = setting("BENCH_ROUNDS", 3);
    let stack = Stack::load();
    let nats = NatsServer::start(&stack).await;

    let marketplace_db = TestDatabase::create(&stack, "bookings_bench_mp").await;
    let layers = taskmesh_testing::with_identity(marketplace_db.app_layers(
        taskmesh_marketplace::Config::default_layers(),
        &stack,
        &nats.url(),
    ));
    let marketplace = RunningApp::start(
        taskmesh_marketplace::App::build(
            taskmesh_marketplace::Config::from_layers(&layers).expect("marketplace config"),
        )
        .await
        .expect("marketplace app"),
    );
    let mp_pool = marketplace_db.pool(&stack).await;
    for statement in [
        "INSERT INTO providers (provider_id, display_name, time_zone, public) VALUES ('ann', 'Ann', 'Europe/Berlin', true)",
        "INSERT INTO categories (category_id, display_name, path) VALUES ('fitness', 'Fitness', '{fitness}')",
        "INSERT INTO listings (provider_id, listing_id, title, category_id, category_path, currency_code, \
           price_units, price_nanos, duration_seconds, state, provider_public) \
         VALUES ('ann', 'yoga', 'Yoga', 'fitness', '{fitness}', 'EUR', 30, 0, 3600, 2, true)",
    ] {
        sqlx::query(statement)
            .execute(&mp_pool)
            .await
            .expect("marketplace data");
    }

    let db = TestDatabase::create(&stack, "bookings_bench").await;
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
    let pool = db.pool(&stack).await;
    sqlx::query(
        "INSERT INTO availabilities (provider_id, weekly_hours, buffer_seconds, horizon_days) \
         SELECT 'ann', jsonb_agg(jsonb_build_object('day', d, 'start', '00:00', 'end', '24:00')), 900, 365 \
         FROM generate_series(1, 7) d",
    )
    .execute(&pool)
    .await
    .expect("availability");
    let zone: chrono_tz::Tz = "Europe/Berlin".parse().expect("zone");
    let first = (Utc::now() + chrono::Duration::days(3)).date_naive();
    let last = first + Days::new(30);
    // Bookings spread evenly over the 31 days, an hour each (75 minutes held with the buffer).
    let per_day = bookings.div_ceil(31);
    let gap = 24 * 60 / per_day.max(1);
    sqlx::query(
        "INSERT INTO bookings (provider_id, booking_id, listing, listing_title, customer, start_time, \
           end_time, held, state) \
         SELECT 'ann', 'b' || g, 'providers/ann/listings/yoga', 'Yoga', 'users/u' || g, s, \
           s + interval '1 hour', tstzrange(s, s + interval '75 minutes'), 2 \
         FROM (SELECT g, (($1::date + (g / $2) * interval '1 day') \
                 + ((g % $2) * $3) * interval '1 minute') AT TIME ZONE 'Europe/Berlin' AS s \
               FROM generate_series(0, $4 - 1) g) AS t",
    )
    .bind(first)
    .bind(i32::try_from(per_day).expect("small"))
    .bind(i32::try_from(gap).expect("small"))
    .bind(i32::try_from(bookings).expect("small"))
    .execute(&pool)
    .await
    .expect("bookings");
    sqlx::query("ANALYZE")
        .execute(&pool)
        .await
        .expect("analyze");

    let store = Store::new(pool.clone(), taskmesh_events::Outbox::new());
    let mut client =
        BookingServiceClient::with_interceptor(channel(app.addr).await, DefaultCaller("carol"));
    let request = ListSlotsRequest {
        listing: "providers/ann/listings/yoga".into(),
        start_date: first.format("%Y-%m-%d").to_string(),
        end_date: last.format("%Y-%m-%d").to_string(),
        time_zone: "Europe/Berlin".into(),
    };
    let day = |date: NaiveDate| instant(zone, date, 0);
    let (from, to) = (day(first), day(last + Days::new(1)));

    let modes = [
        "ListSlots (gRPC, marketplace asked)",
        "service work (store + slots)",
        "bare SQL (held ranges)",
    ];
    let mut results: Vec<Vec<Round>> = modes.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        let client = &mut client;
        results[0].push(
            round(calls, 1, |_| {
                let mut client = client.clone();
                let request = request.clone();
                async move {
                    client
                        .list_slots(request)
                        .await
                        .expect("slots")
                        .into_inner()
                        .slots
                        .len()
                }
            })
            .await,
        );
        results[1].push(
            round(calls, 1, |_| {
                let store = store.clone();
                async move {
                    let rules = store
                        .availability("ann")
                        .await
                        .expect("availability")
                        .rules(zone);
                    let held = store
                        .held(
                            "ann",
                            from - chrono::Duration::days(1),
                            to + chrono::Duration::days(1),
                        )
                        .await
                        .expect("held");
                    let search = Search {
                        duration: chrono::Duration::hours(1),
                        step: chrono::Duration::minutes(15),
                        from,
                        to,
                        now: Utc::now(),
                    };
                    rules.free_slots(&search, &held).len()
                }
            })
            .await,
        );
        results[2].push(
            round(calls, 1, |_| {
                let pool = pool.clone();
                async move {
                    sqlx::query_as::<_, (chrono::DateTime<Utc>, chrono::DateTime<Utc>)>(
                        "SELECT lower(held), upper(held) FROM bookings \
                         WHERE provider_id = $1 AND state <> 3 AND held && tstzrange($2, $3)",
                    )
                    .bind("ann")
                    .bind(from)
                    .bind(to)
                    .fetch_all(&pool)
                    .await
                    .expect("held")
                    .len()
                }
            })
            .await,
        );
    }
    let rows = medians(&mut results);
    println!("\n{calls} calls per round, {rounds} rounds, {bookings} bookings in 31 days\n");
    print_modes(&modes, &rows, 2, calls, "rows per call", 0);
    drop(app);
    drop(marketplace);
}
