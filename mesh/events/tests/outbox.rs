//! The outbox against real PostgreSQL: an event larger than the broker would take is refused when
//! the change is made, as INVALID_ARGUMENT, and leaves no row for the relay to choke on.

use taskmesh_events::{EnqueueError, MAX_EVENT_BYTES, Outbox, OutgoingEvent};
use taskmesh_testing::{Stack, TestDatabase};

#[tokio::test]
async fn an_event_too_large_for_the_broker_is_refused_at_the_change() {
    let stack = Stack::load();
    let db = TestDatabase::create(&stack, "outbox_test").await;
    let pool = sqlx::PgPool::connect(&format!(
        "postgres://{}:{}@127.0.0.1:{}/{}",
        db.name, db.password, stack.pg_port, db.name
    ))
    .await
    .expect("pool");
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
