//! TaskService on tasks themselves: create, get, list, update, delete, undelete, move, complete,
//! reopen, with every error the contract promises.

use taskmesh_contracts::projects_v1::{ColumnKind, Role};
use taskmesh_contracts::tasks_v1::{
    CompleteTaskRequest, DeleteTaskRequest, GetTaskRequest, ListTasksRequest, MoveTaskRequest,
    Priority, ReopenTaskRequest, Status, Task, UndeleteTaskRequest, UpdateTaskRequest,
};
use tonic::Code;

use crate::helpers::{OWNER, World, as_user, create_in, eventually, reason, violations};

#[tokio::test]
async fn a_created_task_is_read_from_its_events_and_listed_from_the_read_model() {
    let world = World::new().await;
    let created = world
        .client()
        .create_task(as_user(
            OWNER,
            create_in(
                &world,
                Task {
                    title: "  Write the docs ".into(),
                    column: world.column(ColumnKind::Doing),
                    priority: Priority::High as i32,
                    labels: vec!["docs".into(), "docs".into(), "a".into()],
                    assignee: "users/ada".into(),
                    ..Default::default()
                },
                "",
            ),
        ))
        .await
        .expect("create")
        .into_inner();
    assert!(
        created
            .name
            .starts_with(&format!("{}/tasks/", world.project))
    );
    assert_eq!(created.title, "Write the docs");
    assert_eq!(created.status, Status::Doing as i32);
    assert_eq!(created.labels, vec!["a", "docs"]);
    assert_eq!(created.creator, "users/owner");
    assert_eq!(created.etag, "v1");

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
    assert_eq!(fetched, created);

    eventually("the read model", || async {
        world.list_all("").await == vec![created.clone()]
    })
    .await;
    let by_label = world
        .list_all("labels:\"docs\" AND priority = PRIORITY_HIGH")
        .await;
    assert_eq!(by_label.len(), 1);
    assert!(world.list_all("status = STATUS_DONE").await.is_empty());
    assert_eq!(world.list_all("assignee = \"users/ada\"").await.len(), 1);
}

#[tokio::test]
async fn bad_tasks_get_field_violations_and_unknown_columns_a_failed_precondition() {
    let world = World::new().await;
    let err = world
        .client()
        .create_task(as_user(
            OWNER,
            create_in(
                &world,
                Task {
                    title: String::new(),
                    labels: vec!["Not Valid".into()],
                    assignee: "ada".into(),
                    column: "projects/other/boards/b/columns/c".into(),
                    ..Default::default()
                },
                "nope",
            ),
        ))
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "request_id",
            "task.assignee",
            "task.labels[0]",
            "task.title"
        ]
    );

    let unknown = world
        .client()
        .create_task(as_user(
            OWNER,
            create_in(
                &world,
                Task {
                    title: "Lost".into(),
                    column: format!("{}/columns/missing", world.board),
                    ..Default::default()
                },
                "",
            ),
        ))
        .await
        .expect_err("unknown column");
    assert_eq!(unknown.code(), Code::FailedPrecondition);
    assert_eq!(reason(&unknown), "COLUMN_NOT_FOUND");

    let malformed = world
        .client()
        .list_tasks(as_user(
            OWNER,
            ListTasksRequest {
                parent: world.project.clone(),
                filter: "status = ".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("malformed filter");
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert_eq!(violations(&malformed), vec!["filter"]);
}

#[tokio::test]
async fn only_members_see_tasks_and_viewers_cannot_change_them() {
    let world = World::new().await;
    let task = world.create("Private").await;
    world.add_member("vic", Role::Viewer).await;

    let stranger = world
        .client()
        .get_task(as_user(
            "mallory",
            GetTaskRequest {
                name: task.name.clone(),
            },
        ))
        .await
        .expect_err("not a member");
    assert_eq!(stranger.code(), Code::PermissionDenied);
    // A missing task of a foreign project looks the same as an existing one.
    let foreign_missing = world
        .client()
        .get_task(as_user(
            "mallory",
            GetTaskRequest {
                name: format!("{}/tasks/{}", world.project, uuid::Uuid::now_v7().simple()),
            },
        ))
        .await
        .expect_err("not a member");
    assert_eq!(foreign_missing.code(), Code::PermissionDenied);

    world
        .client()
        .get_task(as_user(
            "vic",
            GetTaskRequest {
                name: task.name.clone(),
            },
        ))
        .await
        .expect("viewers read");
    let write = world
        .client()
        .update_task(as_user(
            "vic",
            UpdateTaskRequest {
                task: Some(Task {
                    name: task.name.clone(),
                    title: "Mine".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into()],
                }),
            },
        ))
        .await
        .expect_err("viewers do not write");
    assert_eq!(write.code(), Code::PermissionDenied);

    let missing = world
        .client()
        .get_task(as_user(
            OWNER,
            GetTaskRequest {
                name: format!("{}/tasks/{}", world.project, uuid::Uuid::now_v7().simple()),
            },
        ))
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn the_same_request_id_creates_one_task_and_one_event() {
    let world = World::new().await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let make = || {
        create_in(
            &world,
            Task {
                title: "Once".into(),
                column: world.column(ColumnKind::Todo),
                ..Default::default()
            },
            &request_id,
        )
    };
    let first = world
        .client()
        .create_task(as_user(OWNER, make()))
        .await
        .expect("first")
        .into_inner();
    let second = world
        .client()
        .create_task(as_user(OWNER, make()))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(first, second);
    let mut db = world.tasks.db.connect(&world.stack).await;
    let created: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM task_events WHERE event_type = 'taskmesh.tasks.v1.TaskCreated'",
    )
    .fetch_one(&mut db)
    .await
    .expect("count");
    assert_eq!(created, 1);
    let published: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM mesh_outbox WHERE event_type = 'taskmesh.tasks.v1.TaskCreated'",
    )
    .fetch_one(&mut db)
    .await
    .expect("count");
    assert_eq!(published, 1);
}

#[tokio::test]
async fn updates_follow_the_mask_and_a_stale_etag_is_aborted() {
    let world = World::new().await;
    let task = world.create("Draft").await;
    let updated = world
        .client()
        .update_task(as_user(
            OWNER,
            UpdateTaskRequest {
                task: Some(Task {
                    name: task.name.clone(),
                    title: "Final".into(),
                    description: "not in the mask".into(),
                    priority: Priority::Urgent as i32,
                    etag: task.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into(), "priority".into()],
                }),
            },
        ))
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.title, "Final");
    assert_eq!(updated.priority, Priority::Urgent as i32);
    assert_eq!(updated.description, "");
    assert_eq!(updated.etag, "v2");

    let stale = world
        .client()
        .update_task(as_user(
            OWNER,
            UpdateTaskRequest {
                task: Some(Task {
                    name: task.name.clone(),
                    title: "Lost".into(),
                    etag: task.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into()],
                }),
            },
        ))
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);
    assert_eq!(reason(&stale), "ETAG_MISMATCH");
    use tonic_types::StatusExt;
    let info = stale
        .get_error_details()
        .error_info()
        .cloned()
        .expect("info");
    assert_eq!(info.metadata["current_etag"], "v2");

    let bad_mask = world
        .client()
        .update_task(as_user(
            OWNER,
            UpdateTaskRequest {
                task: Some(Task {
                    name: task.name.clone(),
                    column: task.column.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["column".into()],
                }),
            },
        ))
        .await
        .expect_err("column is changed by MoveTask");
    assert_eq!(violations(&bad_mask), vec!["update_mask"]);
}

#[tokio::test]
async fn tasks_move_complete_reopen_delete_and_undelete() {
    let world = World::new().await;
    let task = world.create("Flow").await;
    let mut client = world.client();
    let moved = client
        .move_task(as_user(
            OWNER,
            MoveTaskRequest {
                name: task.name.clone(),
                column: world.column(ColumnKind::Doing),
                position: 3,
                etag: task.etag.clone(),
            },
        ))
        .await
        .expect("move")
        .into_inner();
    assert_eq!(moved.status, Status::Doing as i32);
    assert_eq!(moved.position, 3);

    let completed = client
        .complete_task(as_user(
            OWNER,
            CompleteTaskRequest {
                name: task.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .expect("complete")
        .into_inner();
    assert_eq!(completed.status, Status::Done as i32);
    assert_eq!(completed.column, world.column(ColumnKind::Done));
    assert!(completed.complete_time.is_some());
    let again = client
        .complete_task(as_user(
            OWNER,
            CompleteTaskRequest {
                name: task.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .expect_err("already complete");
    assert_eq!(reason(&again), "ALREADY_COMPLETED");

    let reopened = client
        .reopen_task(as_user(
            OWNER,
            ReopenTaskRequest {
                name: task.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .expect("reopen")
        .into_inner();
    assert_eq!(reopened.status, Status::Todo as i32);
    assert!(reopened.complete_time.is_none());

    let unknown = client
        .move_task(as_user(
            OWNER,
            MoveTaskRequest {
                name: task.name.clone(),
                column: format!("{}/columns/nowhere", world.board),
                position: 0,
                etag: String::new(),
            },
        ))
        .await
        .expect_err("unknown column");
    assert_eq!(unknown.code(), Code::FailedPrecondition);

    let deleted = client
        .delete_task(as_user(
            OWNER,
            DeleteTaskRequest {
                name: task.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .expect("delete")
        .into_inner();
    assert!(deleted.delete_time.is_some());
    let write_deleted = client
        .move_task(as_user(
            OWNER,
            MoveTaskRequest {
                name: task.name.clone(),
                column: world.column(ColumnKind::Backlog),
                position: 0,
                etag: String::new(),
            },
        ))
        .await
        .expect_err("deleted");
    assert_eq!(write_deleted.code(), Code::NotFound);
    eventually("the deletion in the read model", || async {
        world.list_all("").await.is_empty()
    })
    .await;

    let restored = client
        .undelete_task(as_user(
            OWNER,
            UndeleteTaskRequest {
                name: task.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .expect("undelete")
        .into_inner();
    assert!(restored.delete_time.is_none());
    let not_deleted = client
        .undelete_task(as_user(
            OWNER,
            UndeleteTaskRequest {
                name: task.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .expect_err("not deleted");
    assert_eq!(reason(&not_deleted), "NOT_DELETED");
    eventually("the restore in the read model", || async {
        world.list_all("").await.len() == 1
    })
    .await;
}

#[tokio::test]
async fn the_service_answers_reflection_health_and_readiness() {
    let world = World::new().await;
    let grpcurl = world.stack.bin("grpcurl");
    let listed = tokio::process::Command::new(&grpcurl)
        .args(["-plaintext", &world.tasks.addr.to_string(), "list"])
        .output()
        .await
        .expect("grpcurl");
    let listed = String::from_utf8_lossy(&listed.stdout);
    for service in [
        "taskmesh.tasks.v1.TaskService",
        "taskmesh.tasks.v1.TaskAdminService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            listed.lines().any(|l| l == service),
            "{service} in {listed}"
        );
    }
    let readyz = reqwest::get(format!("http://{}/readyz", world.tasks.admin_addr))
        .await
        .expect("readyz");
    assert_eq!(readyz.status(), 200);
    let metrics_url = format!("http://{}/metrics", world.tasks.admin_addr);
    eventually("consumer lag gauges", || async {
        let text = reqwest::get(&metrics_url)
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.contains(r#"taskmesh_consumer_pending{consumer="tasks-read-model""#)
            && text.contains(r#"taskmesh_consumer_pending{consumer="tasks-job-status""#)
    })
    .await;
    // Each handled event's age (from its change to its handling), and the time the handler
    // took, are recorded per consumer.
    world.create("Aged").await;
    eventually("the event's age and handling time recorded", || async {
        let text = reqwest::get(&metrics_url)
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let counted = |metric: &str| {
            text.lines().any(|line| {
                line.starts_with(&format!(r#"{metric}_count{{consumer="tasks-read-model""#))
                    && !line.ends_with(" 0")
            })
        };
        counted("taskmesh_consumer_event_age_seconds")
            && counted("taskmesh_consumer_handling_seconds")
    })
    .await;
}

/// Job inputs are bounded by the contract: a 3 MiB request body, 33 headers and a backoff whose
/// `max` is a hundred years are refused at CreateTask, together, before anything is stored.
#[tokio::test]
async fn oversized_and_unbounded_jobs_are_refused_at_create() {
    use taskmesh_contracts::tasks_v1::{HttpRequest, Job, RetryBackoff, job::Kind};
    let world = World::new().await;
    let job = Job {
        kind: Some(Kind::HttpRequest(HttpRequest {
            method: "POST".into(),
            url: "https://example.org/hook".into(),
            headers: (0..33).map(|i| (format!("x-h{i}"), "v".into())).collect(),
            body: vec![b'x'; 3 * 1024 * 1024],
            expected_status: 0,
        })),
        backoff: Some(RetryBackoff {
            initial: Some(prost_types::Duration {
                seconds: 1,
                nanos: 0,
            }),
            multiplier: 2.0,
            max: Some(prost_types::Duration {
                seconds: 100 * 365 * 24 * 3600,
                nanos: 0,
            }),
        }),
        ..Default::default()
    };
    let err = world
        .client()
        .create_task(as_user(
            OWNER,
            create_in(
                &world,
                Task {
                    title: "Too much".into(),
                    column: world.column(ColumnKind::Todo),
                    job: Some(job),
                    ..Default::default()
                },
                "",
            ),
        ))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "task.job.backoff.max",
            "task.job.http_request.body",
            "task.job.http_request.headers",
        ]
    );
    assert!(world.list_all("").await.is_empty(), "nothing was stored");
}
