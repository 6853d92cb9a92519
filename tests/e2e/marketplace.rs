//! The marketplace and bookings across the platform, over REST through the gateway: an operator's
//! category, a provider's listing found by search, its slots and a booking, the provider's
//! confirmation, both sides' notifications, the completed booking reaching the marketplace over
//! NATS so the customer may review it, and the calendar feed read with no credential at all.

use serde_json::{Value, json};
use taskmesh_testing::Stack;

use crate::PASSWORD;
use crate::harness::{Platform, Rest, poll};

/// The kinds in a user's inbox.
async fn kinds(rest: &Rest, user: &str) -> Vec<String> {
    let (status, inbox) = rest.get(&format!("/v1/users/{user}/notifications")).await;
    assert_eq!(status, 200, "{inbox}");
    inbox["notifications"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|n| n["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_is_found_booked_confirmed_completed_reviewed_and_in_both_calendars() {
    let stack = Stack::load();
    let operators = [("TASKMESH_AUTH__OPERATORS", "[\"users/root\"]".to_owned())];
    let platform = Platform::start_with(&stack, &operators, "").await;
    let mut root = Rest::new(&platform.base);
    root.register("root", PASSWORD).await;
    let mut ann = Rest::new(&platform.base);
    ann.register("ann", PASSWORD).await;
    let mut carol = Rest::new(&platform.base);
    carol.register("carol", PASSWORD).await;

    let (status, body) = root
        .post(
            "/v1/categories?categoryId=fitness",
            json!({"displayName": "Fitness"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = ann
        .post(
            "/v1/categories?categoryId=mine",
            json!({"displayName": "Mine"}),
        )
        .await;
    assert_eq!(status, 403, "only operators: {body}");
    let (status, body) = ann
        .post(
            "/v1/providers",
            json!({"displayName": "Ann's studio", "timeZone": "Europe/Berlin", "public": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, listing) = ann
        .post(
            "/v1/providers/ann/listings",
            json!({"title": "Morning yoga", "description": "Gentle flow", "category": "categories/fitness",
                   "price": {"currencyCode": "EUR", "units": "30"}, "duration": "3600s",
                   "remote": true, "state": "STATE_PUBLISHED"}),
        )
        .await;
    assert_eq!(status, 200, "{listing}");
    let listing = listing["name"].as_str().expect("listing").to_owned();
    let (status, found) = carol
        .get("/v1/listings:search?query=yoga&currencyCode=EUR&maxPrice=40&orderBy=price")
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["listings"][0]["name"], listing.as_str(), "{found}");
    assert_eq!(
        found["facets"][0]["category"], "categories/fitness",
        "{found}"
    );

    // Hours every day; a slot two days ahead; carol books it.
    let days: Vec<Value> = [
        "DAY_OF_WEEK_MONDAY",
        "DAY_OF_WEEK_TUESDAY",
        "DAY_OF_WEEK_WEDNESDAY",
        "DAY_OF_WEEK_THURSDAY",
        "DAY_OF_WEEK_FRIDAY",
        "DAY_OF_WEEK_SATURDAY",
        "DAY_OF_WEEK_SUNDAY",
    ]
    .iter()
    .map(|day| json!({"day": day, "hours": {"startTime": "08:00", "endTime": "20:00"}}))
    .collect();
    let (status, body) = ann
        .patch(
            "/v1/providers/ann/availability",
            json!({"weeklyHours": days, "buffer": "900s"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let day = (chrono::Utc::now() + chrono::Duration::days(2)).date_naive();
    let (status, slots) = carol
        .get(&format!(
            "/v1/{listing}:slots?startDate={day}&endDate={day}&timeZone=America/New_York"
        ))
        .await;
    assert_eq!(status, 200, "{slots}");
    let start = slots["slots"][4]["startTime"]
        .as_str()
        .expect("a slot")
        .to_owned();
    let (status, booking) = carol
        .post(
            "/v1/providers/ann/bookings",
            json!({"listing": listing, "startTime": start}),
        )
        .await;
    assert_eq!(status, 200, "{booking}");
    let booking = booking["name"].as_str().expect("booking").to_owned();
    let (status, taken) = carol
        .post(
            "/v1/providers/ann/bookings",
            json!({"listing": listing, "startTime": start}),
        )
        .await;
    assert_eq!(status, 400, "{taken}");
    assert_eq!(taken["details"][0]["reason"], "SLOT_TAKEN", "{taken}");
    let (status, body) = ann.post(&format!("/v1/{booking}:confirm"), json!({})).await;
    assert_eq!(status, 200, "{body}");

    // Both sides hear of it through the notifications service.
    poll("the provider's notification", || async {
        kinds(&ann, "ann")
            .await
            .contains(&"NOTIFICATION_KIND_BOOKING_REQUESTED".to_owned())
            .then_some(())
    })
    .await;
    poll("the customer's confirmation", || async {
        kinds(&carol, "carol")
            .await
            .contains(&"NOTIFICATION_KIND_BOOKING_CONFIRMED".to_owned())
            .then_some(())
    })
    .await;

    // A review before the booking took place is refused.
    let review = json!({"booking": booking, "rating": 5, "comment": "Lovely"});
    let (status, body) = carol
        .post(&format!("/v1/{listing}/reviews"), review.clone())
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["details"][0]["reason"], "BOOKING_NOT_COMPLETED",
        "{body}"
    );

    // The appointment took place (its time moved back in the bookings database); completed.
    let bookings_db = platform
        .databases()
        .iter()
        .find(|(name, _)| *name == "bookings")
        .map(|(_, db)| db)
        .expect("the bookings database");
    let pool = bookings_db.pool(&stack).await;
    let past = chrono::Utc::now() - chrono::Duration::hours(2);
    sqlx::query(
        "UPDATE bookings SET start_time = $2, end_time = $3, held = tstzrange($2, $3) \
         WHERE 'providers/' || provider_id || '/bookings/' || booking_id = $1",
    )
    .bind(&booking)
    .bind(past)
    .bind(past + chrono::Duration::hours(1))
    .execute(&pool)
    .await
    .expect("move it back");
    let (status, body) = ann
        .post(&format!("/v1/{booking}:complete"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");

    // BookingCompleted reaches the marketplace over NATS: now carol may review, once.
    let made = poll("the review", || async {
        let (status, body) = carol
            .post(&format!("/v1/{listing}/reviews"), review.clone())
            .await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(made["author"], "users/carol");
    let (status, again) = carol
        .post(&format!("/v1/{listing}/reviews"), review.clone())
        .await;
    assert_eq!(status, 409, "{again}");
    let (status, rated) = carol.get(&format!("/v1/{listing}")).await;
    assert_eq!(status, 200);
    assert_eq!(rated["rating"]["count"], "1", "{rated}");
    assert_eq!(rated["rating"]["average"].as_f64(), Some(5.0), "{rated}");
    poll("the review request", || async {
        kinds(&carol, "carol")
            .await
            .contains(&"NOTIFICATION_KIND_REVIEW_REQUESTED".to_owned())
            .then_some(())
    })
    .await;

    // The calendar feed, read without any credential.
    let (status, feed) = carol.get("/v1/users/carol/calendarFeed").await;
    assert_eq!(status, 200, "{feed}");
    let path = feed["path"].as_str().expect("path").to_owned();
    let response = reqwest::get(platform.base.clone() + &path)
        .await
        .expect("feed");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("type")
        .to_owned();
    assert!(content_type.starts_with("text/calendar"), "{content_type}");
    let text = response.text().await.expect("text");
    assert!(text.starts_with("BEGIN:VCALENDAR"), "{text}");
    assert!(
        text.contains(&format!("UID:{}@taskmesh.dev", booking.replace('/', "-"))),
        "{text}"
    );
    let (status, _) = carol
        .post("/v1/users/carol/calendarFeed:rotate", json!({}))
        .await;
    assert_eq!(status, 200);
    let old = reqwest::get(platform.base.clone() + &path)
        .await
        .expect("old feed");
    assert_eq!(old.status().as_u16(), 404);
    platform.clean_up();
}
