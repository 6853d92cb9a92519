//! Jobs on tasks: validation, and the latest execution state reported back.

use taskmesh_contracts::projects_v1::ColumnKind;
use taskmesh_contracts::tasks_v1::{GetTaskRequest, Task, UpdateTaskRequest};

use crate::helpers::{OWNER, World, as_user, create_in, eventually, violations};

#[tokio::test]
async fn a_task_carries_a_validated_job() {
    use taskmesh_contracts::tasks_v1::{Job, WebCrawl, job::Kind};
    let world = World::new().await;
    let job = Job {
        kind: Some(Kind::WebCrawl(WebCrawl {
            url: "http://127.0.0.1:9/page".into(),
            query: "rust".into(),
        })),
        max_attempts: 3,
        ..Default::default()
    };
    let created = world
        .client()
        .create_task(as_user(
            OWNER,
            create_in(
                &world,
                Task {
                    title: "Crawl".into(),
                    column: world.column(ColumnKind::Todo),
                    job: Some(job.clone()),
                    ..Default::default()
                },
                "",
            ),
        ))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.job, Some(job));
    let fetched = world
        .client()
        .get_task(as_user(
            OWNER,
            GetTaskRequest {
                name: created.name.clone(),
            },
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(fetched.job, created.job);

    let bad = world
        .client()
        .update_task(as_user(
            OWNER,
            UpdateTaskRequest {
                task: Some(Task {
                    name: created.name,
                    job: Some(Job {
                        kind: Some(Kind::WebCrawl(WebCrawl {
                            url: "file:///etc/passwd".into(),
                            query: "x".into(),
                        })),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["job".into()],
                }),
            },
        ))
        .await
        .expect_err("invalid job");
    assert_eq!(violations(&bad), vec!["task.job.web_crawl.url"]);
}

#[tokio::test]
async fn tasks_show_the_latest_execution_state_of_their_job() {
    use async_nats::jetstream::{self, message::PublishMessage};
    use prost::Message;
    use taskmesh_contracts::execution_v1::{
        Execution, ExecutionCompleted, ExecutionStarted, ExecutionState,
    };
    use taskmesh_contracts::tasks_v1::JobState;

    let world = World::new().await;
    let task = world.create("Run me").await;
    let js = jetstream::new(async_nats::connect(world.nats.url()).await.expect("nats"));
    taskmesh_events::StreamSpec::for_context("execution", 1, std::time::Duration::from_secs(60))
        .ensure(&js)
        .await
        .expect("stream");
    let execution = |state: ExecutionState, seconds: i64| Execution {
        name: format!("{}/executions/e1", task.name),
        task: task.name.clone(),
        state: state as i32,
        update_time: Some(prost_types::Timestamp { seconds, nanos: 0 }),
        ..Default::default()
    };
    let publish = |kind: &'static str, payload: Vec<u8>, id: &'static str| {
        let js = js.clone();
        async move {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id);
            headers.insert(
                "Taskmesh-Event-Type",
                format!("taskmesh.execution.v1.{kind}").as_str(),
            );
            js.send_publish(
                "taskmesh.execution.v1.event",
                PublishMessage::build()
                    .payload(payload.into())
                    .headers(headers),
            )
            .await
            .expect("publish")
            .await
            .expect("ack");
        }
    };
    publish(
        "ExecutionCompleted",
        ExecutionCompleted {
            execution: Some(execution(ExecutionState::Succeeded, 2_000)),
        }
        .encode_to_vec(),
        "done",
    )
    .await;
    // An older event arriving late does not win.
    publish(
        "ExecutionStarted",
        ExecutionStarted {
            execution: Some(execution(ExecutionState::Running, 1_000)),
        }
        .encode_to_vec(),
        "started",
    )
    .await;

    eventually("the job status on the task", || async {
        world
            .client()
            .get_task(as_user(
                OWNER,
                GetTaskRequest {
                    name: task.name.clone(),
                },
            ))
            .await
            .expect("get")
            .into_inner()
            .job_status
            .is_some_and(|s| s.state == JobState::Succeeded as i32)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let fetched = world
        .client()
        .get_task(as_user(
            OWNER,
            GetTaskRequest {
                name: task.name.clone(),
            },
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        fetched.job_status.expect("status").state,
        JobState::Succeeded as i32
    );
    let listed = world.list_all("").await;
    assert_eq!(
        listed[0].job_status.as_ref().map(|s| s.state),
        Some(JobState::Succeeded as i32)
    );
}

#[tokio::test]
async fn a_jobs_secret_headers_are_sealed_at_rest_and_redacted_for_readers() {
    use taskmesh_contracts::tasks_v1::{HttpRequest, Job, job::Kind};
    let world = World::new().await;
    let secret = format!("Bearer tm-{}", uuid::Uuid::new_v4().simple());
    let job = |headers: &[(&str, &str)]| Job {
        kind: Some(Kind::HttpRequest(HttpRequest {
            url: "http://127.0.0.1:9/hook".into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let headers_of = |task: &Task| match task.job.as_ref().and_then(|j| j.kind.clone()) {
        Some(Kind::HttpRequest(request)) => request.headers,
        other => panic!("not an HTTP request job: {other:?}"),
    };
    let created = world
        .client()
        .create_task(as_user(
            OWNER,
            create_in(
                &world,
                Task {
                    title: "Hook".into(),
                    column: world.column(ColumnKind::Todo),
                    job: Some(job(&[
                        ("Authorization", secret.as_str()),
                        ("X-Api-Key", "tm-key-123"),
                        ("Content-Type", "application/vnd.taskmesh+json"),
                    ])),
                    ..Default::default()
                },
                "",
            ),
        ))
        .await
        .expect("create")
        .into_inner();

    // Readers see the names and the harmless values, never a secret, sealed or not.
    let shown = headers_of(&created);
    assert_eq!(shown["Authorization"], "[redacted]");
    assert_eq!(shown["X-Api-Key"], "[redacted]");
    assert_eq!(shown["Content-Type"], "application/vnd.taskmesh+json");
    let fetched = world
        .client()
        .get_task(as_user(
            OWNER,
            GetTaskRequest {
                name: created.name.clone(),
            },
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(headers_of(&fetched), shown);
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = world.list_all("").await;
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(headers_of(listed.first().expect("listed")), shown);

    // A client sends back what it read, changing something else: the secret stays as it was.
    world
        .client()
        .update_task(as_user(
            OWNER,
            UpdateTaskRequest {
                task: Some(Task {
                    name: created.name.clone(),
                    job: Some(job(&[
                        ("Authorization", "[redacted]"),
                        ("X-Api-Key", "tm-key-456"),
                    ])),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["job".into()],
                }),
            },
        ))
        .await
        .expect("update");

    // At rest (events, event store, read model, outbox) only sealed values, no secret in the clear.
    let db = &world.tasks.db;
    for clear in [secret.as_str(), "tm-key-123", "tm-key-456", "[redacted]"] {
        assert_eq!(
            db.tables_containing(&world.stack, clear).await,
            Vec::<String>::new(),
            "`{clear}` is stored"
        );
    }
    let harmless = db
        .tables_containing(&world.stack, "application/vnd.taskmesh+json")
        .await;
    assert!(
        harmless.contains(&"task_events".to_owned()),
        "the scan finds what is stored: {harmless:?}"
    );
    let sealed = db.tables_containing(&world.stack, "tmsealed:v1:").await;
    assert!(
        sealed.contains(&"task_events".to_owned()) && sealed.contains(&"task_view".to_owned()),
        "sealed values are stored: {sealed:?}"
    );
}
