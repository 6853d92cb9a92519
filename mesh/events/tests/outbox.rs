//! The outbox against real PostgreSQL: an event larger than the broker would take is refused when
//! the change is made, as INVALID_ARGUMENT, and leaves no row for the relay to choke on.

use taskmesh_events::{EnqueueError, MAX_EVENT_BYTES, Outbox, OutgoingEvent};
use taskmesh_testing::{Stack, TestDatabase};

#[tokio::test]
async fn an_event_too_large_for_the_broker_is_refused_at_the_change() {
    let stack = Stack::load();
    let db = TestDatabase::create(&stack, "outbox_test").await;
    let pool = db.pool(&stack).await;
    taskmesh_mesh::db::migrate(&pool, &[&taskmesh_events::MIGRATOR])
        .await
        .expect("schema");
    let outbox = Outbox::new();
    let event = |bytes: usize| {
        OutgoingEvent::from_encoded("taskmesh.tests.v1.Big", "tests/big", vec![b'x'; bytes])
    };

    let mut tx = pool.begin().await.expect("tx");
    outbox
        .enqueue(&mut tx, &event(MAX_EVENT_BYTES / 2))
        .await
        .expect("a large event that fits");
    let refused = outbox
        .enqueue(&mut tx, &event(MAX_EVENT_BYTES))
        .await
        .expect_err("too large");
    assert!(
        matches!(refused, EnqueueError::TooLarge { .. }),
        "{refused}"
    );
    let status = tonic::Status::from(refused);
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("bytes"), "{}", status.message());
    tx.commit().await.expect("commit");

    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM mesh_outbox")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(rows, 1, "only the event that fits is waiting for the relay");
}

/// A row JetStream keeps refusing (its subject has no stream) does not hold up the rows behind it:
/// the next 100 events are published at once, and once the bad row has failed while others went
/// through enough times it is set aside, counted and left for an operator, who lists it, fixes the
/// cause and puts it back in line.
#[tokio::test]
async fn a_row_that_keeps_failing_is_set_aside_and_the_rest_flows() {
    use std::time::{Duration, Instant};
    use taskmesh_events::{OutboxRelay, RelayMetrics, StreamSpec};
    use taskmesh_testing::NatsServer;

    let stack = Stack::load();
    let nats = NatsServer::start(&stack).await;
    let db = TestDatabase::create(&stack, "relay_test").await;
    let pool = db.pool(&stack).await;
    taskmesh_mesh::db::migrate(&pool, &[&taskmesh_events::MIGRATOR])
        .await
        .expect("schema");
    let outbox = Outbox::new();
    let metrics = taskmesh_mesh::Metrics::new("relay_test");
    let relay_metrics = RelayMetrics::register(&metrics);
    let relay = OutboxRelay::new(
        pool.clone(),
        async_nats::connect(nats.url()).await.expect("nats"),
        "relay_test",
        vec![StreamSpec::for_context(
            "relaytest",
            1,
            Duration::from_secs(60),
        )],
        outbox.waker(),
        relay_metrics.clone(),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(relay.run(stopped));

    let enqueue = |events: Vec<OutgoingEvent>| {
        let (pool, outbox) = (pool.clone(), outbox.clone());
        async move {
            let mut tx = pool.begin().await.expect("tx");
            for event in &events {
                outbox.enqueue(&mut tx, event).await.expect("enqueue");
            }
            tx.commit().await.expect("commit");
            outbox.wake();
        }
    };
    let good = |n: usize| {
        (0..n)
            .map(|i| {
                let mut event = OutgoingEvent::from_encoded(
                    "taskmesh.relaytest.v1.Fine",
                    &format!("tests/fine-{i}"),
                    b"fine".to_vec(),
                );
                event.subject = "taskmesh.relaytest.v1.fine".to_owned();
                event
            })
            .collect::<Vec<_>>()
    };
    // First in line: an event on a subject no stream takes.
    let mut bad =
        OutgoingEvent::from_encoded("taskmesh.nowhere.v1.Lost", "tests/bad", b"x".to_vec());
    bad.subject = "taskmesh.nowhere.v1.lost".to_owned();
    enqueue(vec![bad]).await;
    enqueue(good(100)).await;

    let published = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM mesh_outbox WHERE published_at IS NOT NULL",
        )
        .fetch_one(&pool)
        .await
        .expect("count")
    };
    let started = Instant::now();
    while published().await < 100 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    assert_eq!(
        published().await,
        100,
        "the 100 events behind the bad row went out"
    );
    println!("100 events behind a failing row published in {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // More traffic: each round that publishes others counts against the bad row.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let set_aside: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("SELECT set_aside_at FROM mesh_outbox WHERE resource = 'tests/bad'")
                .fetch_one(&pool)
                .await
                .expect("bad row");
        if set_aside.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the bad row was never set aside");
        enqueue(good(3)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(relay_metrics.set_aside.get(), 1);
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM mesh_outbox WHERE resource = 'tests/bad'")
            .fetch_one(&pool)
            .await
            .expect("bad row");
    assert_eq!(attempts, taskmesh_events::relay::SET_ASIDE_AFTER);
    assert!(error.is_some_and(|e| !e.is_empty()));

    // The operator lists it, fixes the cause (a stream for its subject) and puts it back in line.
    let listed = taskmesh_events::outbox::set_aside(&pool, 10)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].subject, "taskmesh.nowhere.v1.lost");
    assert_eq!(listed[0].event_type, "taskmesh.nowhere.v1.Lost");
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.expect("nats"));
    StreamSpec::for_context("nowhere", 1, Duration::from_secs(60))
        .ensure(&js)
        .await
        .expect("the missing stream");
    let retried = taskmesh_events::outbox::retry_set_aside(&pool, Some(listed[0].seq))
        .await
        .expect("retry");
    assert_eq!(retried, 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let published: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("SELECT published_at FROM mesh_outbox WHERE resource = 'tests/bad'")
                .fetch_one(&pool)
                .await
                .expect("bad row");
        if published.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the retried row was never published"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        taskmesh_events::outbox::set_aside(&pool, 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        taskmesh_events::outbox::retry_set_aside(&pool, None)
            .await
            .expect("retry all"),
        0,
        "nothing left to retry"
    );
    let _ = stop.send(true);
    let _ = running.await;
}
