//! No double booking, ever: 50 attempts at overlapping times leave one booking, the buffer keeps
//! back-to-back bookings apart, and a reschedule racing other bookings for the same time leaves
//! the booking with exactly one time.

use chrono::Duration;
use taskmesh_contracts::bookings_v1::RescheduleBookingRequest;
use tonic::Code;

use crate::helpers::{World, a_day_ahead, berlin, reason};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_overlapping_attempts_leave_one_booking_and_the_buffer_holds() {
    let world = World::new("bookings_test_contention", 15).await;
    let day = a_day_ahead();
    let carol = world.as_user("carol").await;
    // 10:00, 10:15, 10:30, 10:45 Berlin: every pair of these hour-long bookings overlaps.
    let attempts = (0..50).map(|i| {
        let mut clients = carol.clone();
        let start = berlin(day, 10, 15 * (i % 4));
        let world = &world;
        async move { world.book(&mut clients, start).await }
    });
    let results = futures::future::join_all(attempts).await;
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "exactly one booking: {results:?}");
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        assert_eq!(reason(refused), "SLOT_TAKEN");
    }
    let winner = won[0];
    let end = taskmesh_mesh::time::from_timestamp(winner.end_time).expect("end");

    // Right after the winner's end is inside its buffer; after the buffer is free.
    let mut dave = world.as_user("dave").await;
    let too_close = world
        .book(&mut dave, end)
        .await
        .expect_err("inside the buffer");
    assert_eq!(reason(&too_close), "SLOT_TAKEN");
    let next = world
        .book(&mut dave, end + Duration::minutes(15))
        .await
        .expect("back to back, after the buffer");
    let next_end = taskmesh_mesh::time::from_timestamp(next.end_time).expect("end");
    world
        .book(&mut dave, next_end + Duration::minutes(15))
        .await
        .expect("and the one after");

    // A time off the provider's hours is not a slot at all.
    let night = world
        .book(&mut dave, berlin(day, 22, 0))
        .await
        .expect_err("after hours");
    assert_eq!(reason(&night), "SLOT_UNAVAILABLE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reschedule_racing_other_bookings_keeps_exactly_one_time() {
    let world = World::new("bookings_test_contention", 0).await;
    let day = a_day_ahead();
    let pool = world.db.pool(&world.stack).await;
    let mut carol = world.as_user("carol").await;
    let dave = world.as_user("dave").await;
    for round in 0..5 {
        let (from, to) = (berlin(day, 8 + round * 2, 0), berlin(day, 9 + round * 2, 0));
        let booking = world.book(&mut carol, from).await.expect("carol's booking");
        // Carol moves to `to` while ten others try to book `to` themselves.
        let mut moving = carol.clone();
        let name = booking.name.clone();
        let reschedule = async move {
            moving
                .bookings
                .reschedule_booking(RescheduleBookingRequest {
                    name,
                    start_time: Some(taskmesh_mesh::time::to_timestamp(to)),
                    etag: String::new(),
                })
                .await
        };
        let others = (0..10).map(|_| {
            let mut clients = dave.clone();
            let world = &world;
            async move { world.book(&mut clients, to).await }
        });
        let (moved, others) = tokio::join!(reschedule, futures::future::join_all(others));
        let others_won = others.iter().filter(|r| r.is_ok()).count();
        // Exactly one of them has `to`; carol holds one time, the old one only if she did not move.
        let carol_rows: Vec<(chrono::DateTime<chrono::Utc>, i16)> = sqlx::query_as(
            "SELECT start_time, state FROM bookings WHERE customer = 'users/carol' AND state <> 3 \
             AND start_time >= $1 AND start_time < $2",
        )
        .bind(from)
        .bind(to + Duration::hours(1))
        .fetch_all(&pool)
        .await
        .expect("carol's bookings");
        assert_eq!(
            carol_rows.len(),
            1,
            "round {round}: carol holds one booking"
        );
        match moved {
            Ok(moved) => {
                assert_eq!(others_won, 0, "round {round}");
                assert_eq!(carol_rows[0].0, to);
                assert_eq!(moved.get_ref().sequence, 1);
                // Her old time is free again.
                let mut erin = world.as_user("erin").await;
                world
                    .book(&mut erin, from)
                    .await
                    .expect("the old time is free");
            }
            Err(refused) => {
                assert_eq!(reason(&refused), "SLOT_TAKEN", "round {round}");
                assert_eq!(others_won, 1, "round {round}");
                assert_eq!(carol_rows[0].0, from, "round {round}: carol keeps her time");
            }
        }
        let overlapping: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM bookings a JOIN bookings b ON a.provider_id = b.provider_id \
             AND a.booking_id < b.booking_id AND a.held && b.held \
             WHERE a.state <> 3 AND b.state <> 3",
        )
        .fetch_one(&pool)
        .await
        .expect("overlaps");
        assert_eq!(overlapping, 0);
    }
}
