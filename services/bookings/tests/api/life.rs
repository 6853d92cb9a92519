//! A booking's life over gRPC: slots in the customer's zone that skip bookings, who may confirm,
//! cancel, reschedule and complete it and when, and the events each step publishes on `BOOKINGS`.

use std::time::Duration as StdDuration;

use async_nats::jetstream::{self, consumer};
use chrono::Duration;
use futures::StreamExt;
use taskmesh_contracts::bookings_v1::{
    CancelBookingRequest, CompleteBookingRequest, ConfirmBookingRequest, GetBookingRequest,
    ListBookingsRequest, ListSlotsRequest, RescheduleBookingRequest, booking::State,
};
use tonic::Code;

use crate::helpers::{PROVIDER, World, a_day_ahead, berlin, reason};

/// The event types on `BOOKINGS` so far, in order.
async fn events(world: &World) -> Vec<String> {
    let client = async_nats::connect(world.nats.url()).await.expect("NATS");
    let stream = jetstream::new(client)
        .get_stream("BOOKINGS")
        .await
        .expect("the BOOKINGS stream");
    let reader = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("a reader");
    let mut messages = reader
        .fetch()
        .max_messages(100)
        .expires(StdDuration::from_secs(1))
        .messages()
        .await
        .expect("fetch");
    let mut types = Vec::new();
    while let Some(Ok(message)) = messages.next().await {
        types.push(taskmesh_events::header(
            &message,
            taskmesh_events::headers::EVENT_TYPE,
        ));
    }
    types
}

#[tokio::test]
async fn a_booking_is_confirmed_rescheduled_and_cancelled_by_the_right_side_and_told() {
    let world = World::new("bookings_test_life", 0).await;
    let day = a_day_ahead();
    let mut ann = world.as_user(PROVIDER).await;
    let mut carol = world.as_user("carol").await;
    let mut dave = world.as_user("dave").await;

    // Slots in New York time: 08:00 Berlin is 02:00 in New York, on the same date.
    let slots = |zone: &str| ListSlotsRequest {
        listing: world.listing.clone(),
        start_date: day.format("%Y-%m-%d").to_string(),
        end_date: day.format("%Y-%m-%d").to_string(),
        time_zone: zone.into(),
    };
    let free = carol
        .bookings
        .list_slots(slots("America/New_York"))
        .await
        .expect("slots")
        .into_inner();
    assert_eq!(free.provider_time_zone, "Europe/Berlin");
    // 08:00 to 19:00 Berlin every 15 minutes, all inside New York's day: 45 starts.
    assert_eq!(free.slots.len(), 45);
    assert!(
        free.slots[0].local_start_time.ends_with("T02:00:00-05:00"),
        "{:?}",
        free.slots[0]
    );
    let utc = carol
        .bookings
        .list_slots(slots("UTC"))
        .await
        .expect("slots")
        .into_inner();
    assert!(utc.slots[0].local_start_time.ends_with("T07:00:00+00:00"));

    let booking = world
        .book(&mut carol, berlin(day, 10, 0))
        .await
        .expect("book");
    assert_eq!(booking.state, State::Requested as i32);
    assert_eq!(booking.customer, "users/carol");
    let after = carol
        .bookings
        .list_slots(slots("UTC"))
        .await
        .expect("slots")
        .into_inner();
    // The hour from 10:00 is held: starts 09:15 to 10:45 are gone (seven of them).
    assert_eq!(after.slots.len(), utc.slots.len() - 7);

    // Strangers see nothing; the customer cannot confirm.
    let get = |name: &str| GetBookingRequest { name: name.into() };
    let hidden = dave
        .bookings
        .get_booking(get(&booking.name))
        .await
        .expect_err("not dave's");
    assert_eq!(hidden.code(), Code::NotFound);
    let confirm = || ConfirmBookingRequest {
        name: booking.name.clone(),
    };
    let denied = carol
        .bookings
        .confirm_booking(confirm())
        .await
        .expect_err("the customer");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let confirmed = ann
        .bookings
        .confirm_booking(confirm())
        .await
        .expect("the provider confirms")
        .into_inner();
    assert_eq!(confirmed.state, State::Confirmed as i32);
    assert_eq!(confirmed.sequence, 1);
    let early = ann
        .bookings
        .complete_booking(CompleteBookingRequest {
            name: booking.name.clone(),
        })
        .await
        .expect_err("not started yet");
    assert_eq!(early.code(), Code::FailedPrecondition);

    // The customer moves it; a stale etag is refused.
    let stale = carol
        .bookings
        .reschedule_booking(RescheduleBookingRequest {
            name: booking.name.clone(),
            start_time: Some(taskmesh_mesh::time::to_timestamp(berlin(day, 14, 0))),
            etag: booking.etag.clone(),
        })
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    let moved = carol
        .bookings
        .reschedule_booking(RescheduleBookingRequest {
            name: booking.name.clone(),
            start_time: Some(taskmesh_mesh::time::to_timestamp(berlin(day, 14, 0))),
            etag: confirmed.etag.clone(),
        })
        .await
        .expect("reschedule")
        .into_inner();
    assert_eq!(moved.state, State::Confirmed as i32);
    assert_eq!(moved.sequence, 2);
    world
        .book(&mut dave, berlin(day, 10, 0))
        .await
        .expect("the old time is free");

    // Lists: the provider's and the customer's own.
    let mine = carol
        .bookings
        .list_bookings(ListBookingsRequest {
            parent: "users/carol".into(),
            filter: "state = STATE_CONFIRMED".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(mine.bookings.len(), 1);
    let theirs = carol
        .bookings
        .list_bookings(ListBookingsRequest {
            parent: "users/dave".into(),
            ..Default::default()
        })
        .await
        .expect_err("dave's");
    assert_eq!(theirs.code(), Code::PermissionDenied);
    let all = ann
        .bookings
        .list_bookings(ListBookingsRequest {
            parent: format!("providers/{PROVIDER}"),
            ..Default::default()
        })
        .await
        .expect("the provider's")
        .into_inner();
    assert_eq!(all.bookings.len(), 2);

    // Cancelled by the provider with a reason; the time is free again.
    let cancelled = ann
        .bookings
        .cancel_booking(CancelBookingRequest {
            name: booking.name.clone(),
            reason: "ill".into(),
        })
        .await
        .expect("cancel")
        .into_inner();
    assert_eq!(cancelled.state, State::Cancelled as i32);
    assert_eq!(cancelled.cancel_reason, "ill");
    assert_eq!(cancelled.cancelled_by, format!("users/{PROVIDER}"));
    let again = carol
        .bookings
        .cancel_booking(CancelBookingRequest {
            name: booking.name.clone(),
            reason: String::new(),
        })
        .await
        .expect_err("cancelled already");
    assert_eq!(reason(&again), "WRONG_STATE");
    world
        .book(&mut dave, berlin(day, 14, 0))
        .await
        .expect("the cancelled time is free");

    // A confirmed booking whose start has passed (moved back in the database) completes.
    let done = world
        .book(&mut carol, berlin(day, 17, 0))
        .await
        .expect("book");
    ann.bookings
        .confirm_booking(ConfirmBookingRequest {
            name: done.name.clone(),
        })
        .await
        .expect("confirm");
    let pool = world.db.pool(&world.stack).await;
    let past = chrono::Utc::now() - Duration::hours(2);
    sqlx::query(
        "UPDATE bookings SET start_time = $2, end_time = $3, held = tstzrange($2, $3) \
         WHERE provider_id || '/' || booking_id = $1",
    )
    .bind(
        done.name
            .trim_start_matches("providers/")
            .replacen("/bookings/", "/", 1),
    )
    .bind(past)
    .bind(past + Duration::hours(1))
    .execute(&pool)
    .await
    .expect("move it back");
    let completed = ann
        .bookings
        .complete_booking(CompleteBookingRequest {
            name: done.name.clone(),
        })
        .await
        .expect("complete")
        .into_inner();
    assert_eq!(completed.state, State::Completed as i32);

    // Every step was told, in order.
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(20);
    let expected = [
        "taskmesh.bookings.v1.BookingRequested",
        "taskmesh.bookings.v1.BookingConfirmed",
        "taskmesh.bookings.v1.BookingRescheduled",
        "taskmesh.bookings.v1.BookingRequested",
        "taskmesh.bookings.v1.BookingCancelled",
        "taskmesh.bookings.v1.BookingRequested",
        "taskmesh.bookings.v1.BookingRequested",
        "taskmesh.bookings.v1.BookingConfirmed",
        "taskmesh.bookings.v1.BookingCompleted",
    ];
    loop {
        let seen = events(&world).await;
        if seen == expected {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "events: {seen:?}");
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_repeated_request_id_books_once_and_another_callers_id_is_their_own() {
    use taskmesh_contracts::bookings_v1::{Booking, CreateBookingRequest};
    let world = World::new("bookings_test_life", 0).await;
    let day = a_day_ahead();
    let request_id = uuid::Uuid::new_v4().to_string();
    let request = |start| CreateBookingRequest {
        parent: format!("providers/{PROVIDER}"),
        booking: Some(Booking {
            listing: world.listing.clone(),
            start_time: Some(taskmesh_mesh::time::to_timestamp(start)),
            ..Default::default()
        }),
        request_id: request_id.clone(),
    };
    let mut carol = world.as_user("carol").await;
    let first = carol
        .bookings
        .create_booking(request(berlin(day, 9, 0)))
        .await
        .expect("book")
        .into_inner();
    // A retry (even with another time, as a confused client might send) answers the first booking.
    let again = carol
        .bookings
        .create_booking(request(berlin(day, 13, 0)))
        .await
        .expect("the retry")
        .into_inner();
    assert_eq!(again.name, first.name);
    assert_eq!(again.start_time, first.start_time);
    // Dave's use of the same id is his own request.
    let mut dave = world.as_user("dave").await;
    let his = dave
        .bookings
        .create_booking(request(berlin(day, 13, 0)))
        .await
        .expect("dave's booking")
        .into_inner();
    assert_ne!(his.name, first.name);
    let mine = carol
        .bookings
        .list_bookings(ListBookingsRequest {
            parent: "users/carol".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(mine.bookings.len(), 1);
}
