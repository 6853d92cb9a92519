//! SearchListings over a seeded catalogue of 1,000 listings (plus drafts, deleted ones and a
//! private provider's, which never show): every filter, the facets and every sort order checked
//! against the same catalogue computed in Rust.

use std::collections::HashMap;

use taskmesh_contracts::marketplace_v1::{Listing, SearchListingsRequest, Venue};

use crate::helpers::{OPERATOR, World, category};

/// One seeded listing as the test knows it.
#[derive(Debug, Clone)]
struct Seeded {
    id: String,
    category: &'static str,
    currency: &'static str,
    cents: i64,
    remote: bool,
    rating_count: i64,
    rating_sum: i64,
    age_seconds: i64,
}

/// Leaf or top category of listing `i`, and the tree above it.
const CATEGORIES: [&str; 5] = ["home", "cleaning", "garden", "fitness", "yoga"];

fn ancestors(category: &str) -> Vec<&'static str> {
    match category {
        "cleaning" => vec!["home", "cleaning"],
        "garden" => vec!["home", "garden"],
        "yoga" => vec!["fitness", "yoga"],
        "home" => vec!["home"],
        _ => vec!["fitness"],
    }
}

async fn seed(world: &World) -> Vec<Seeded> {
    let mut operator = world.as_user(OPERATOR).await;
    category(&mut operator, "home", "").await;
    category(&mut operator, "cleaning", "categories/home").await;
    category(&mut operator, "garden", "categories/home").await;
    category(&mut operator, "fitness", "").await;
    category(&mut operator, "yoga", "categories/fitness").await;
    let pool = world.db.pool(&world.stack).await;
    sqlx::query(
        "INSERT INTO providers (provider_id, display_name, time_zone, public) \
         VALUES ('ann', 'Ann', 'UTC', true), ('hidden', 'Hidden', 'UTC', false)",
    )
    .execute(&pool)
    .await
    .expect("providers");
    let seeded: Vec<Seeded> = (0..1000)
        .map(|i: i64| {
            let rating_count = i % 4;
            Seeded {
                id: format!("l{i:04}"),
                category: CATEGORIES[(i % 5) as usize],
                currency: if i % 3 == 0 { "USD" } else { "EUR" },
                cents: 1000 + (i * 37) % 9000,
                remote: i % 2 == 0,
                rating_count,
                rating_sum: rating_count * (1 + i % 5),
                age_seconds: i,
            }
        })
        .collect();
    for listing in &seeded {
        let title = if listing.id.ends_with('7') {
            "Morning yoga class"
        } else {
            "Home service"
        };
        let description = if listing.id.ends_with('3') {
            "includes yoga stretches"
        } else {
            "friendly and careful"
        };
        sqlx::query(
            "INSERT INTO listings (provider_id, listing_id, title, description, category_id, \
               category_path, currency_code, price_units, price_nanos, duration_seconds, remote, \
               state, provider_public, rating_count, rating_sum, create_time) \
             VALUES ('ann', $1, $2, $3, $4, $5, $6, $7, $8, 3600, $9, 2, true, $10, $11, \
               now() - make_interval(secs => $12))",
        )
        .bind(&listing.id)
        .bind(title)
        .bind(description)
        .bind(listing.category)
        .bind(ancestors(listing.category))
        .bind(listing.currency)
        .bind(listing.cents / 100)
        .bind(i32::try_from(listing.cents % 100).expect("cents") * 10_000_000)
        .bind(listing.remote)
        .bind(listing.rating_count)
        .bind(listing.rating_sum)
        .bind(listing.age_seconds as f64)
        .execute(&pool)
        .await
        .expect("listing");
    }
    // Never found: a draft, a deleted listing, a private provider's listing.
    sqlx::query(
        "INSERT INTO listings (provider_id, listing_id, title, category_id, category_path, \
           currency_code, price_units, price_nanos, duration_seconds, state, provider_public, \
           delete_time) VALUES \
         ('ann', 'draft', 'Morning yoga draft', 'yoga', '{fitness,yoga}', 'EUR', 20, 0, 3600, 1, true, NULL), \
         ('ann', 'gone', 'Morning yoga gone', 'yoga', '{fitness,yoga}', 'EUR', 20, 0, 3600, 2, true, now()), \
         ('hidden', 'secret', 'Morning yoga secret', 'yoga', '{fitness,yoga}', 'EUR', 20, 0, 3600, 2, false, NULL)",
    )
    .execute(&pool)
    .await
    .expect("hidden listings");
    seeded
}

fn average(listing: &Seeded) -> f64 {
    if listing.rating_count == 0 {
        0.0
    } else {
        listing.rating_sum as f64 / listing.rating_count as f64
    }
}

fn id(listing: &Listing) -> String {
    listing
        .name
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn cents(listing: &Listing) -> i64 {
    let price = listing.price.clone().unwrap_or_default();
    price.units * 100 + i64::from(price.nanos) / 10_000_000
}

#[tokio::test]
async fn filters_facets_and_orders_match_the_catalogue() {
    let world = World::new("marketplace_test_search").await;
    let seeded = seed(&world).await;
    let mut bob = world.as_user("bob").await;
    let mut client = bob.listings.clone();
    let mut search = async |request: SearchListingsRequest| -> Vec<Listing> {
        // Every page, following the tokens; the total must match what came.
        let mut all = Vec::new();
        let mut request = SearchListingsRequest {
            page_size: 100,
            ..request
        };
        loop {
            let page = client
                .search_listings(request.clone())
                .await
                .expect("search")
                .into_inner();
            all.extend(page.listings);
            assert_eq!(
                page.total_size,
                i64::try_from(all.len()).unwrap_or(0).max(page.total_size)
            );
            if page.next_page_token.is_empty() {
                assert_eq!(page.total_size, all.len() as i64);
                return all;
            }
            request.page_token = page.next_page_token;
        }
    };
    let count = |keep: &dyn Fn(&Seeded) -> bool| seeded.iter().filter(|l| keep(l)).count();

    // A category holds its sub-categories' listings.
    let home = search(SearchListingsRequest {
        category: "categories/home".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        home.len(),
        count(&|l| ancestors(l.category).contains(&"home"))
    );

    // Price range in one currency, bounds included.
    let range = search(SearchListingsRequest {
        currency_code: "EUR".into(),
        min_price: "20".into(),
        max_price: "30.5".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        range.len(),
        count(&|l| l.currency == "EUR" && (2000..=3050).contains(&l.cents))
    );
    assert!(range.iter().all(|l| (2000..=3050).contains(&cents(l))));

    // Minimum rating (unrated listings never pass) and venue.
    let rated = search(SearchListingsRequest {
        min_rating: 4.0,
        venue: Venue::Remote as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(
        rated.len(),
        count(&|l| l.rating_count > 0 && average(l) >= 4.0 && l.remote)
    );
    let in_person = search(SearchListingsRequest {
        venue: Venue::InPerson as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(in_person.len(), count(&|l| !l.remote));

    // Facets: every filter but the category, rolled up the tree.
    let page = bob
        .listings
        .search_listings(SearchListingsRequest {
            category: "categories/yoga".into(),
            currency_code: "EUR".into(),
            ..Default::default()
        })
        .await
        .expect("search")
        .into_inner();
    let facets: HashMap<String, i64> = page
        .facets
        .iter()
        .map(|f| (f.category.clone(), f.count))
        .collect();
    for name in CATEGORIES {
        let expected = count(&|l| l.currency == "EUR" && ancestors(l.category).contains(&name));
        assert_eq!(
            facets
                .get(&format!("categories/{name}"))
                .copied()
                .unwrap_or(0),
            expected as i64,
            "facet {name}"
        );
    }
    assert_eq!(
        page.total_size,
        count(&|l| l.currency == "EUR" && l.category == "yoga") as i64
    );

    // Sort orders over everything.
    let by_price = search(SearchListingsRequest {
        order_by: "price".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        by_price.len(),
        1000,
        "drafts, deleted and private listings never show"
    );
    assert!(by_price.windows(2).all(|w| cents(&w[0]) <= cents(&w[1])));
    let by_price_desc = search(SearchListingsRequest {
        order_by: "price desc".into(),
        ..Default::default()
    })
    .await;
    assert!(
        by_price_desc
            .windows(2)
            .all(|w| cents(&w[0]) >= cents(&w[1]))
    );
    let by_rating = search(SearchListingsRequest {
        order_by: "rating".into(),
        ..Default::default()
    })
    .await;
    let stars = |l: &Listing| l.rating.unwrap_or_default().average;
    assert!(by_rating.windows(2).all(|w| stars(&w[0]) >= stars(&w[1])));
    let newest = search(SearchListingsRequest::default()).await;
    let ids: Vec<String> = newest.iter().map(id).collect();
    let mut expected: Vec<&Seeded> = seeded.iter().collect();
    expected.sort_by_key(|l| l.age_seconds);
    assert_eq!(
        ids,
        expected.iter().map(|l| l.id.clone()).collect::<Vec<_>>()
    );

    // Relevance: a title match before a description match; the hidden ones never.
    let yoga = search(SearchListingsRequest {
        query: "yoga".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        yoga.len(),
        count(&|l| l.id.ends_with('7') || l.id.ends_with('3'))
    );
    let first_description_match = yoga
        .iter()
        .position(|l| id(l).ends_with('3'))
        .expect("a description match");
    assert!(
        yoga[..first_description_match]
            .iter()
            .all(|l| id(l).ends_with('7')),
        "title matches rank first"
    );
    assert_eq!(first_description_match, count(&|l| l.id.ends_with('7')));
    let excluded = search(SearchListingsRequest {
        query: "yoga -morning".into(),
        ..Default::default()
    })
    .await;
    assert!(excluded.iter().all(|l| id(l).ends_with('3')));
}
