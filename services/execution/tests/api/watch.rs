//! Watching an execution: a stream of its states until the end, woken by the database's
//! announcements (also of changes another replica made), limited per caller and in lifetime.

use std::time::Duration;

use futures::StreamExt;
use taskmesh_contracts::execution_v1::{Execution, ExecutionState, WatchExecutionRequest};
use tonic::codec::Streaming;

use crate::helpers::World;
use crate::jobs::get;

/// A task whose job calls `/slow` (30 s), once its execution runs.
async fn running_slow_job(world: &World) -> Execution {
    let task = world.create_task_with(get(world, "/slow", 1, 30_000)).await;
    world
        .execution_until(&task, |e| e.state() == ExecutionState::Running)
        .await
}

/// A watch of the running execution `name`, its first update (Running) read.
async fn watch_running(world: &World, name: &str) -> Streaming<Execution> {
    let mut stream = world
        .client()
        .watch_execution(WatchExecutionRequest {
            name: name.to_owned(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = stream.next().await.expect("first").expect("execution");
    assert_eq!(first.state(), ExecutionState::Running);
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_progress_until_the_end() {
    let world = World::new().await;
    let task = world
        .create_task_with(get(&world, "/flaky/w", 3, 5000))
        .await;
    let first = world.execution_until(&task, |_| true).await;
    let mut stream = world
        .client()
        .watch_execution(WatchExecutionRequest {
            name: first.name.clone(),
        })
        .await
        .expect("watch")
        .into_inner();
    let mut states = Vec::new();
    while let Some(update) = stream.next().await {
        states.push(update.expect("update").state());
    }
    assert_eq!(
        states.last(),
        Some(&ExecutionState::Succeeded),
        "{states:?}"
    );
    assert!(
        states.contains(&ExecutionState::Running) || states.len() >= 2,
        "{states:?}"
    );
}

/// A watch hears a change made by another replica (here: straight in the database) through the
/// database's announcement, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_hears_changes_made_elsewhere() {
    let world = World::new().await;
    let running = running_slow_job(&world).await;
    let mut stream = watch_running(&world, &running.name).await;

    let mut db = world.db.connect(&world.stack).await;
    // The job reports its own progress once as it starts its request (then waits 30 s): the
    // change elsewhere comes after it, so the two cannot race.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let progress: String =
            sqlx::query_scalar("SELECT progress_message FROM executions WHERE name = $1")
                .bind(&running.name)
                .fetch_one(&mut db)
                .await
                .expect("progress");
        if progress == "sending the request" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "progress: {progress}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sqlx::query(
        "UPDATE executions SET progress_message = 'from another replica', version = version + 1 \
         WHERE name = $1",
    )
    .bind(&running.name)
    .execute(&mut db)
    .await
    .expect("a change elsewhere");
    // Heard within 5 s (after the job's own report, if the stream had not sent that yet).
    let heard = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let update = stream.next().await.expect("an update").expect("execution");
            if update.progress_message != "sending the request" {
                return update;
            }
        }
    })
    .await
    .expect("heard within 5 s");
    assert_eq!(heard.progress_message, "from another replica");
}

/// Watch streams are limited per caller (RESOURCE_EXHAUSTED beyond; a closed stream frees its
/// place) and in lifetime (the stream ends; the client watches again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_are_limited_per_caller_and_in_lifetime() {
    let world = World::with(|l| {
        l.set("watch.max_streams_per_user", 2)
            .set("watch.max_stream_secs", 2)
    })
    .await;
    let running = running_slow_job(&world).await;
    let watch = || {
        let mut client = world.client();
        let name = running.name.clone();
        async move {
            client
                .watch_execution(WatchExecutionRequest { name })
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let first = watch().await.expect("first");
    let _second = watch().await.expect("second");
    let refused = watch().await.expect_err("a third is refused");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(refused.message().contains("at most 2"), "{refused:?}");
    // Another caller has places of their own.
    let other = world
        .stranger()
        .watch_execution(WatchExecutionRequest {
            name: running.name.clone(),
        })
        .await
        .expect_err("a stranger may not read it");
    assert_eq!(other.code(), tonic::Code::PermissionDenied);

    drop(first);
    let mut third = None;
    for _ in 0..50 {
        if let Ok(stream) = watch().await {
            third = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut third = third.expect("a closed stream frees its place");
    // The job runs 20 s; the stream ends after its 2 s lifetime all the same.
    let mut updates = 0;
    while let Some(update) = tokio::time::timeout(Duration::from_secs(10), third.next())
        .await
        .expect("the stream ends within its lifetime")
    {
        update.expect("update");
        updates += 1;
    }
    assert!(updates >= 1);
}

/// Watch streams wait for the database's announcements instead of asking it again and again: with
/// eight streams open on a running execution, the service sends PostgreSQL no more than it does
/// without them (a 100 ms poll would be 80 queries a second). Measured in bytes sent to the
/// database through a counting proxy, around the same idle moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_watch_streams_ask_the_database_nothing() {
    let stack = taskmesh_testing::Stack::load();
    let proxy = taskmesh_testing::TcpProxy::start(stack.pg_port).await;
    let world = World::with(|l| {
        l.set("database.port", proxy.port())
            // One worker, busy with the slow job: no claims polled, a heartbeat every 10 s.
            .set("workers.concurrency", 1)
            .set("workers.lease_ms", 30_000)
    })
    .await;
    let running = running_slow_job(&world).await;
    let quiet = |window: Duration| {
        let proxy = &proxy;
        async move {
            let before = proxy.bytes_to_target();
            tokio::time::sleep(window).await;
            proxy.bytes_to_target() - before
        }
    };
    let window = Duration::from_secs(3);
    let without = quiet(window).await;

    let mut streams = Vec::new();
    for _ in 0..8 {
        streams.push(watch_running(&world, &running.name).await);
    }
    let with = quiet(window).await;
    println!(
        "bytes sent to PostgreSQL in {window:?}: {without} without watch streams, {with} with 8 open"
    );
    assert!(
        with <= without + 1024,
        "8 idle watch streams made the service send {with} bytes to the database in {window:?} \
         ({without} without them)"
    );

    // They still hear a change at once.
    let mut db = world.db.connect(&world.stack).await;
    sqlx::query("UPDATE executions SET version = version + 1 WHERE name = $1")
        .bind(&running.name)
        .execute(&mut db)
        .await
        .expect("a change");
    for stream in &mut streams {
        tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("heard within 5 s")
            .expect("an update")
            .expect("execution");
    }
}
