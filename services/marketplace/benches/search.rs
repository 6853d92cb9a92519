//! Search benchmark (not a test): `SearchListings` over 100 000 listings, next to the SQL under it.
//!
//! Needs the local stack (`make infra`) and a release identity binary beside the bench
//! (`cargo build --release --bin identity`); then
//! `cargo bench -p taskmesh-marketplace --bench search`.
//!
//! One process fills a fresh database with `BENCH_LISTINGS` listings (default 100 000, of 200
//! public providers, in 40 categories under 8 top ones; titles and descriptions of made-up words,
//! frequent ones far more often, as in text; prices in three currencies; ratings on two listings in
//! three), then asks the same mix of searches three ways, in interleaved rounds:
//!
//! - **SearchListings**: the service's RPC over gRPC (the app in this process, token checked):
//!   the page, the category facets and the total;
//! - **service SQL**: the store's two statements alone (the page; the facets, whose sum is the
//!   total), over sqlx;
//! - **bare SQL**: the page's statement alone (match, filters, order, 20 rows), no total, no facets.
//!
//! Each row is the mode's median round (p50/p99 over `BENCH_SEARCHES` searches, default 300).

use std::time::Instant;

use taskmesh_contracts::marketplace_v1::listing_service_client::ListingServiceClient;
use taskmesh_contracts::marketplace_v1::{SearchListingsRequest, Venue};
use taskmesh_marketplace::domain::search::SearchQuery;
use taskmesh_marketplace::store::Store;
use taskmesh_testing::bench::{Round, medians, print_kinds, print_modes, round, setting};
use taskmesh_testing::{DefaultCaller, NatsServer, RunningApp, Stack, TestDatabase, channel};

/// The searches, as requests.
fn searches() -> Vec<(&'static str, SearchListingsRequest)> {
    vec![
        (
            "a frequent word",
            SearchListingsRequest {
                query: "kalo".into(),
                ..Default::default()
            },
        ),
        (
            "a rare word",
            SearchListingsRequest {
                query: "tosvudar".into(),
                ..Default::default()
            },
        ),
        (
            "a category (and its 4 children)",
            SearchListingsRequest {
                category: "categories/top3".into(),
                ..Default::default()
            },
        ),
        (
            "EUR 20-60, cheapest first",
            SearchListingsRequest {
                currency_code: "EUR".into(),
                min_price: "20".into(),
                max_price: "60".into(),
                order_by: "price".into(),
                ..Default::default()
            },
        ),
        (
            "rated 4+, remote, best rated first",
            SearchListingsRequest {
                min_rating: 4.0,
                venue: Venue::Remote as i32,
                order_by: "rating".into(),
                ..Default::default()
            },
        ),
        (
            "a word in a category",
            SearchListingsRequest {
                query: "mire".into(),
                category: "categories/top5".into(),
                ..Default::default()
            },
        ),
    ]
}

async fn fill(pool: &sqlx::PgPool, listings: usize) {
    sqlx::query(
        "INSERT INTO providers (provider_id, display_name, time_zone, public) \
         SELECT 'p' || g, 'Provider ' || g, 'UTC', true FROM generate_series(0, 199) g",
    )
    .execute(pool)
    .await
    .expect("providers");
    sqlx::query(
        "INSERT INTO categories (category_id, display_name, parent_id, path) \
         SELECT 'top' || g, 'Top ' || g, NULL, ARRAY['top' || g] FROM generate_series(0, 7) g",
    )
    .execute(pool)
    .await
    .expect("top categories");
    sqlx::query(
        "INSERT INTO categories (category_id, display_name, parent_id, path) \
         SELECT 'c' || g, 'Category ' || g, 'top' || (g % 8), ARRAY['top' || (g % 8), 'c' || g] \
         FROM generate_series(0, 31) g",
    )
    .execute(pool)
    .await
    .expect("categories");
    let words = "ARRAY(SELECT a || b || c FROM unnest(ARRAY['','ka','lo','mi','re','tos','vu','dar','pel','sin','gor','nu','ren']) a, \
                 unnest(ARRAY['ka','lo','mi','re','tos','vu','dar','pel','sin','gor','nu','ren','']) b, \
                 unnest(ARRAY['','ka','lo','mi','re','tos','vu','dar','pel','sin','gor','nu','ren']) c ORDER BY length(a || b || c), 1)";
    let text = |count: usize| {
        format!(
            "(SELECT string_agg(w[1 + i * 0 + floor(power(random(), 3) * (array_length(w, 1) - 1))::int], ' ') \
             FROM generate_series(1, {count} + g * 0) i)"
        )
    };
    // Listing g sits in category c(g % 40) when g % 40 < 32, else in a top category.
    sqlx::query(&format!(
        "WITH words AS (SELECT {words} AS w) \
         INSERT INTO listings (provider_id, listing_id, title, description, category_id, \
           category_path, currency_code, price_units, price_nanos, duration_seconds, remote, state, \
           provider_public, rating_count, rating_sum, create_time) \
         SELECT 'p' || (g % 200), 'l' || g, {title}, {description}, \
           CASE WHEN g % 40 < 32 THEN 'c' || (g % 40) ELSE 'top' || (g % 8) END, \
           CASE WHEN g % 40 < 32 THEN ARRAY['top' || ((g % 40) % 8), 'c' || (g % 40)] \
                ELSE ARRAY['top' || (g % 8)] END, \
           (ARRAY['EUR', 'USD', 'GBP'])[1 + g % 3], 5 + (g * 7919) % 200, (g % 100) * 10000000, \
           3600, g % 2 = 0, 2, true, CASE WHEN g % 3 = 0 THEN 0 ELSE 1 + g % 20 END, \
           CASE WHEN g % 3 = 0 THEN 0 ELSE (1 + g % 20) * (1 + g % 5) END, \
           now() - make_interval(secs => g) \
         FROM words, generate_series(0, {last}) g",
        title = text(6),
        description = text(40),
        last = listings - 1,
    ))
    .execute(pool)
    .await
    .expect("listings");
    sqlx::query("ANALYZE").execute(pool).await.expect("analyze");
}

/// The page statement the store runs, alone and written out: the floor.
fn bare_sql(query: &SearchQuery) -> (String, Vec<String>) {
    let mut sql = String::from("SELECT l.listing_id FROM listings l WHERE l.listed");
    let mut binds = Vec::new();
    let bind = |value: String, binds: &mut Vec<String>| {
        binds.push(value);
        format!("${}", binds.len())
    };
    let mut order = "l.create_time DESC".to_owned();
    if !query.words.is_empty() {
        let b = bind(query.words.clone(), &mut binds);
        sql.push_str(&format!(
            " AND l.searchable @@ websearch_to_tsquery('english', {b})"
        ));
        order = format!("ts_rank_cd(l.searchable, websearch_to_tsquery('english', {b})) DESC");
    }
    if let Some(category) = &query.category {
        let b = bind(category.clone(), &mut binds);
        sql.push_str(&format!(" AND l.category_path @> ARRAY[{b}]::text[]"));
    }
    if let Some(currency) = &query.currency_code {
        let b = bind(currency.clone(), &mut binds);
        sql.push_str(&format!(" AND l.currency_code = {b}"));
    }
    if let Some(min) = &query.min_price {
        let b = bind(min.clone(), &mut binds);
        sql.push_str(&format!(" AND l.price >= {b}::numeric"));
    }
    if let Some(max) = &query.max_price {
        let b = bind(max.clone(), &mut binds);
        sql.push_str(&format!(" AND l.price <= {b}::numeric"));
    }
    if query.min_rating > 0.0 {
        sql.push_str(&format!(
            " AND l.rating_count > 0 AND l.rating_average >= {}",
            query.min_rating
        ));
    }
    match query.venue {
        taskmesh_marketplace::domain::search::Venue::Remote => sql.push_str(" AND l.remote"),
        taskmesh_marketplace::domain::search::Venue::InPerson => {
            sql.push_str(" AND NOT l.remote");
        }
        taskmesh_marketplace::domain::search::Venue::Any => {}
    }
    match query.order {
        taskmesh_marketplace::domain::search::Order::PriceAscending => order = "l.price".into(),
        taskmesh_marketplace::domain::search::Order::PriceDescending => {
            order = "l.price DESC".into();
        }
        taskmesh_marketplace::domain::search::Order::Rating => {
            order = "l.rating_average DESC".into();
        }
        taskmesh_marketplace::domain::search::Order::Newest => {
            order = "l.create_time DESC".into();
        }
        taskmesh_marketplace::domain::search::Order::Relevance => {}
    }
    sql.push_str(&format!(" ORDER BY {order} LIMIT 20"));
    (sql, binds)
}

#[tokio::main]
async fn main() {
    let listings = setting("BENCH_LISTINGS", 100_000);
    let count = setting("BENCH_SEARCHES", 300);
    let rounds = setting("BENCH_ROUNDS", 3);
    let stack = Stack::load();
    let nats = NatsServer::start(&stack).await;
    let db = TestDatabase::create(&stack, "marketplace_bench").await;
    let layers = taskmesh_testing::with_identity(db.app_layers(
        taskmesh_marketplace::Config::default_layers(),
        &stack,
        &nats.url(),
    ));
    let app = taskmesh_marketplace::App::build(
        taskmesh_marketplace::Config::from_layers(&layers).expect("marketplace config"),
    )
    .await
    .expect("marketplace app");
    let app = RunningApp::start(app);
    let pool = db.pool(&stack).await;
    let started = Instant::now();
    fill(&pool, listings).await;
    println!(
        "filled {listings} listings in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let store = Store::new(pool.clone(), taskmesh_events::Outbox::new());
    let mut client =
        ListingServiceClient::with_interceptor(channel(app.addr).await, DefaultCaller("u0"));
    let kinds = searches();
    let queries: Vec<SearchQuery> = kinds
        .iter()
        .map(|(_, request)| SearchQuery::from_request(request).expect("valid search"))
        .collect();
    let bare: Vec<(String, Vec<String>)> = queries.iter().map(bare_sql).collect();

    let modes = [
        "SearchListings (gRPC)",
        "service SQL (page; facets and total)",
        "bare SQL (page only)",
    ];
    let mut results: Vec<Vec<Round>> = modes.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        let client = &mut client;
        let kinds = &kinds;
        results[0].push(
            round(count, kinds.len(), |i| {
                let mut client = client.clone();
                let request = SearchListingsRequest {
                    page_size: 20,
                    ..kinds[i].1.clone()
                };
                async move {
                    client
                        .search_listings(request)
                        .await
                        .expect("search")
                        .into_inner()
                        .listings
                        .len()
                }
            })
            .await,
        );
        results[1].push(
            round(count, kinds.len(), |i| {
                let store = store.clone();
                let query = queries[i].clone();
                async move {
                    store
                        .search_listings(&query, 0, 20)
                        .await
                        .expect("search")
                        .rows
                        .len()
                        .min(20)
                }
            })
            .await,
        );
        results[2].push(
            round(count, kinds.len(), |i| {
                let pool = pool.clone();
                let (sql, binds) = bare[i].clone();
                async move {
                    let mut query = sqlx::query_scalar::<_, String>(&sql);
                    for value in binds {
                        query = query.bind(value);
                    }
                    query.fetch_all(&pool).await.expect("bare search").len()
                }
            })
            .await,
        );
    }
    let rows = medians(&mut results);
    println!("\n{count} searches per round, {rounds} rounds, {listings} listings\n");
    print_modes(&modes, &rows, 2, count, "results per search", 1);
    println!("\nmedian per search, ms (the same rounds)\n");
    let labels: Vec<String> = kinds.iter().map(|(label, _)| (*label).to_owned()).collect();
    print_kinds("search", &labels, &modes, &rows);
    drop(app);
}
