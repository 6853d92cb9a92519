//! NATS goes away between a write and its publication: the event waits in the outbox and reaches
//! the read model exactly once after NATS returns.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use taskmesh_contracts::tasks_v1::{Task, UpdateTaskRequest};

use crate::helpers::{OWNER, World, as_user, eventually};

async fn read_model_version(world: &World, task: &str) -> i64 {
    let id = uuid::Uuid::try_parse(task.rsplit('/').next().unwrap_or_default()).expect("uuid");
    let mut db = world.tasks.db.connect(&world.stack).await;
    sqlx::query_scalar("SELECT version FROM task_view WHERE task_id = $1")
        .bind(id)
        .fetch_optional(&mut db)
        .await
        .expect("version")
        .unwrap_or(0)
}

async fn stream_messages_for(url: &str, task: &str) -> usize {
    let client = async_nats::connect(url).await.expect("nats");
    let stream = jetstream::new(client)
        .get_stream("TASKS")
        .await
        .expect("stream");
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            filter_subject: "taskmesh.tasks.v1.task_updated".into(),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer
        .fetch()
        .max_messages(1000)
        .expires(Duration::from_millis(500))
        .messages()
        .await
        .expect("fetch");
    let mut count = 0;
    while let Some(message) = messages.next().await {
        let message = message.expect("message");
        let about = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Taskmesh-Subject"))
            .is_some_and(|v| v.as_str() == task);
        if about {
            count += 1;
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_made_while_nats_is_down_reaches_the_read_model_once() {
    let mut world = World::new().await;
    let url = world.nats.url();
    let task = world.create("Resilient").await;
    eventually("the task in the read model", || async {
        read_model_version(&world, &task.name).await == 1
    })
    .await;

    world.nats.stop();
    let updated = world
        .client()
        .update_task(as_user(
            OWNER,
            UpdateTaskRequest {
                task: Some(Task {
                    name: task.name.clone(),
                    title: "Survived".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into()],
                }),
            },
        ))
        .await
        .expect("the write is accepted while NATS is down")
        .into_inner();
    assert_eq!(updated.etag, "v2");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        read_model_version(&world, &task.name).await,
        1,
        "not projected yet"
    );

    world.nats.resume().await;
    eventually("the update in the read model", || async {
        read_model_version(&world, &task.name).await == 2
    })
    .await;
    let listed = world.list_all("title = \"Survived\"").await;
    assert_eq!(listed.len(), 1);
    let mut db = world.tasks.db.connect(&world.stack).await;
    let activity: i64 = sqlx::query_scalar("SELECT count(*) FROM task_activity")
        .fetch_one(&mut db)
        .await
        .expect("activity");
    assert_eq!(activity, 2, "created + updated, each once");
    assert_eq!(
        stream_messages_for(&url, &task.name).await,
        1,
        "published once"
    );
}
