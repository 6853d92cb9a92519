//! Reviews: only by the customer of a completed booking (learned from the `BOOKINGS` stream),
//! once per booking; the rating projection stays exact under concurrent reviews; authors change
//! theirs until the edit deadline.

use taskmesh_contracts::marketplace_v1::{
    CreateReviewRequest, DeleteReviewRequest, GetListingRequest, GetProviderRequest, Review,
    UpdateReviewRequest,
};
use tonic::Code;

use crate::helpers::{OPERATOR, World, category, listing, new_listing, provider};

fn review(parent: &str, booking: &str, rating: i32) -> CreateReviewRequest {
    CreateReviewRequest {
        parent: parent.into(),
        review: Some(Review {
            booking: booking.into(),
            rating,
            comment: "Great session".into(),
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn a_review_needs_a_completed_booking_of_the_listing_and_comes_once() {
    let world = World::new("marketplace_test_reviews").await;
    let mut operator = world.as_user(OPERATOR).await;
    let mut ann = world.as_user("ann").await;
    let mut carol = world.as_user("carol").await;
    let mut dave = world.as_user("dave").await;
    category(&mut operator, "fitness", "").await;
    provider(&mut ann, true).await;
    let yoga = listing(
        &mut ann,
        "providers/ann",
        new_listing("Yoga", "categories/fitness", 30),
    )
    .await;
    let other = listing(
        &mut ann,
        "providers/ann",
        new_listing("Pilates", "categories/fitness", 30),
    )
    .await;
    let booking = "providers/ann/bookings/b1";

    let early = carol
        .reviews
        .create_review(review(&yoga.name, booking, 5))
        .await
        .expect_err("not completed yet");
    assert_eq!(early.code(), Code::FailedPrecondition);
    world
        .complete_booking(booking, &yoga.name, "users/carol")
        .await;

    let stranger = dave
        .reviews
        .create_review(review(&yoga.name, booking, 1))
        .await
        .expect_err("not dave's booking");
    assert_eq!(stranger.code(), Code::FailedPrecondition);
    let elsewhere = carol
        .reviews
        .create_review(review(&other.name, booking, 5))
        .await
        .expect_err("a booking of another listing");
    assert_eq!(elsewhere.code(), Code::FailedPrecondition);
    let made = carol
        .reviews
        .create_review(review(&yoga.name, booking, 4))
        .await
        .expect("review")
        .into_inner();
    assert_eq!(made.author, "users/carol");
    let twice = carol
        .reviews
        .create_review(review(&yoga.name, booking, 5))
        .await
        .expect_err("one per booking");
    assert_eq!(twice.code(), Code::AlreadyExists);

    // The author changes it; nobody else may.
    let denied = dave
        .reviews
        .update_review(UpdateReviewRequest {
            review: Some(Review {
                name: made.name.clone(),
                rating: 1,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["rating".into()],
            }),
        })
        .await
        .expect_err("not the author");
    assert_eq!(denied.code(), Code::PermissionDenied);
    carol
        .reviews
        .update_review(UpdateReviewRequest {
            review: Some(Review {
                name: made.name.clone(),
                rating: 2,
                etag: made.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["rating".into()],
            }),
        })
        .await
        .expect("change the rating");
    let rated = ann
        .listings
        .get_listing(GetListingRequest {
            name: yoga.name.clone(),
        })
        .await
        .expect("listing")
        .into_inner()
        .rating
        .expect("rating");
    assert_eq!((rated.count, rated.average), (1, 2.0));
    carol
        .reviews
        .delete_review(DeleteReviewRequest {
            name: made.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("delete");
    let rated = ann
        .listings
        .get_listing(GetListingRequest { name: yoga.name })
        .await
        .expect("listing")
        .into_inner()
        .rating
        .expect("rating");
    assert_eq!((rated.count, rated.average), (0, 0.0));
}

#[tokio::test]
async fn a_hundred_concurrent_reviews_leave_an_exact_average() {
    let world = World::new("marketplace_test_reviews").await;
    let mut operator = world.as_user(OPERATOR).await;
    let mut ann = world.as_user("ann").await;
    category(&mut operator, "fitness", "").await;
    provider(&mut ann, true).await;
    let yoga = listing(
        &mut ann,
        "providers/ann",
        new_listing("Yoga", "categories/fitness", 30),
    )
    .await;
    // Booking i is the carol's; its rating is 1 + i % 5 (so the sum is known).
    for i in 0..100 {
        world
            .complete_booking(
                &format!("providers/ann/bookings/b{i}"),
                &yoga.name,
                "users/carol",
            )
            .await;
    }
    let carol = world.as_user("carol").await;
    let writes = (0..100).map(|i| {
        let mut reviews = carol.reviews.clone();
        let parent = yoga.name.clone();
        tokio::spawn(async move {
            reviews
                .create_review(review(
                    &parent,
                    &format!("providers/ann/bookings/b{i}"),
                    1 + i % 5,
                ))
                .await
        })
    });
    for written in futures::future::join_all(writes).await {
        written.expect("join").expect("review");
    }
    let expected_sum: i64 = (0..100).map(|i| 1 + i64::from(i % 5)).sum();
    let rating = ann
        .listings
        .get_listing(GetListingRequest { name: yoga.name })
        .await
        .expect("listing")
        .into_inner()
        .rating
        .expect("rating");
    assert_eq!(rating.count, 100);
    assert!(
        (rating.average - expected_sum as f64 / 100.0).abs() < 1e-9,
        "{rating:?}"
    );
    let provider = ann
        .providers
        .get_provider(GetProviderRequest {
            name: "providers/ann".into(),
        })
        .await
        .expect("provider")
        .into_inner()
        .rating
        .expect("rating");
    assert_eq!(provider.count, 100);
    assert!((provider.average - 3.0).abs() < 1e-9, "{provider:?}");
}

#[tokio::test]
async fn a_review_is_locked_after_its_edit_deadline() {
    let world = World::with("marketplace_test_reviews", |layers| {
        layers.set("review_edit_days", 0)
    })
    .await;
    let mut operator = world.as_user(OPERATOR).await;
    let mut ann = world.as_user("ann").await;
    let mut carol = world.as_user("carol").await;
    category(&mut operator, "fitness", "").await;
    provider(&mut ann, true).await;
    let yoga = listing(
        &mut ann,
        "providers/ann",
        new_listing("Yoga", "categories/fitness", 30),
    )
    .await;
    world
        .complete_booking("providers/ann/bookings/b1", &yoga.name, "users/carol")
        .await;
    let made = carol
        .reviews
        .create_review(review(&yoga.name, "providers/ann/bookings/b1", 5))
        .await
        .expect("review")
        .into_inner();
    let locked = carol
        .reviews
        .delete_review(DeleteReviewRequest {
            name: made.name,
            etag: String::new(),
        })
        .await
        .expect_err("past its deadline");
    assert_eq!(locked.code(), Code::FailedPrecondition);
}
