//! The read model can be thrown away and rebuilt from the event store: after 500 tasks and many
//! concurrent updates from several clients, a rebuild yields exactly the rows the projector built.

use std::collections::BTreeMap;

use taskmesh_contracts::tasks_v1::{
    AddCommentRequest, Comment, RebuildReadModelRequest, Task, UpdateTaskRequest,
};
use tonic::Code;

use crate::helpers::{OWNER, World, as_user, eventually};

type Rows = (
    BTreeMap<uuid::Uuid, (i64, Vec<u8>)>,
    Vec<(uuid::Uuid, i64, String, String)>,
);

async fn snapshot(world: &World) -> Rows {
    let mut db = world.tasks.db.connect(&world.stack).await;
    let view: Vec<(uuid::Uuid, i64, Vec<u8>)> =
        sqlx::query_as("SELECT task_id, version, task FROM task_view ORDER BY task_id")
            .fetch_all(&mut db)
            .await
            .expect("view");
    let activity: Vec<(uuid::Uuid, i64, String, String)> = sqlx::query_as(
        "SELECT task_id, version, event_type, summary FROM task_activity ORDER BY task_id, version",
    )
    .fetch_all(&mut db)
    .await
    .expect("activity");
    (
        view.into_iter().map(|(id, v, t)| (id, (v, t))).collect(),
        activity,
    )
}

async fn caught_up(world: &World) -> bool {
    let mut db = world.tasks.db.connect(&world.stack).await;
    let behind: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM task_heads h LEFT JOIN task_view v USING (task_id) \
         WHERE v.version IS DISTINCT FROM h.version",
    )
    .fetch_one(&mut db)
    .await
    .expect("lag");
    behind == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_from_events_reproduces_the_projected_read_model() {
    let world = World::with(|l| l.set("auth.operators", vec!["users/operator"])).await;

    // 500 tasks, created by 5 concurrent clients.
    let mut creators = Vec::new();
    for client_no in 0..5 {
        let world_client = world.client();
        let project = world.project.clone();
        let column = world.column(taskmesh_contracts::projects_v1::ColumnKind::Todo);
        creators.push(tokio::spawn(async move {
            let mut client = world_client;
            let mut names = Vec::new();
            for i in 0..100 {
                let task = client
                    .create_task(as_user(
                        OWNER,
                        taskmesh_contracts::tasks_v1::CreateTaskRequest {
                            parent: project.clone(),
                            task: Some(Task {
                                title: format!("c{client_no} t{i}"),
                                column: column.clone(),
                                ..Default::default()
                            }),
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .expect("create")
                    .into_inner();
                names.push(task);
            }
            names
        }));
    }
    let mut tasks = Vec::new();
    for creator in creators {
        tasks.extend(creator.await.expect("creator"));
    }
    assert_eq!(tasks.len(), 500);

    // 4 clients update the same 50 tasks concurrently with etags (losers see ABORTED) and add
    // comments without etags (retried by the service).
    let hot: Vec<Task> = tasks.iter().take(50).cloned().collect();
    let mut writers = Vec::new();
    for writer in 0..4 {
        let mut client = world.client();
        let hot = hot.clone();
        writers.push(tokio::spawn(async move {
            let mut aborted = 0;
            for task in &hot {
                let update = client
                    .update_task(as_user(
                        OWNER,
                        UpdateTaskRequest {
                            task: Some(Task {
                                name: task.name.clone(),
                                description: format!("writer {writer}"),
                                etag: task.etag.clone(),
                                ..Default::default()
                            }),
                            update_mask: Some(prost_types::FieldMask {
                                paths: vec!["description".into()],
                            }),
                        },
                    ))
                    .await;
                match update {
                    Ok(_) => {}
                    Err(status) if status.code() == Code::Aborted => aborted += 1,
                    Err(status) => panic!("unexpected {status:?}"),
                }
                client
                    .add_comment(as_user(
                        OWNER,
                        AddCommentRequest {
                            request_id: String::new(),
                            parent: task.name.clone(),
                            comment: Some(Comment {
                                text: format!("from writer {writer}"),
                                ..Default::default()
                            }),
                        },
                    ))
                    .await
                    .expect("comment");
            }
            aborted
        }));
    }
    let mut aborted = 0;
    for writer in writers {
        aborted += writer.await.expect("writer");
    }
    // Each hot task had one winning etag update; the other three writers lost.
    assert_eq!(aborted, 50 * 3);

    eventually("the projector to catch up", || caught_up(&world)).await;
    let projected = snapshot(&world).await;
    assert_eq!(projected.0.len(), 500);
    // 500 creations + 50 updates + 200 comments.
    assert_eq!(projected.1.len(), 750);

    let mut db = world.tasks.db.connect(&world.stack).await;
    sqlx::query("TRUNCATE task_view, task_activity")
        .execute(&mut db)
        .await
        .expect("empty the read model");
    assert!(snapshot(&world).await.0.is_empty());

    let refused = world
        .admin()
        .rebuild_read_model(RebuildReadModelRequest {})
        .await
        .expect_err("only operators rebuild");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let rebuilt = world
        .admin()
        .rebuild_read_model(as_user("operator", RebuildReadModelRequest {}))
        .await
        .expect("rebuild")
        .into_inner();
    assert_eq!(rebuilt.tasks, 500);
    assert_eq!(rebuilt.events, 750);
    assert_eq!(snapshot(&world).await, projected, "the same rows");
}

/// `tasks rebuild-read-model` as an operator runs it, against a database where the rebuild fails
/// half way (the read model's table is gone): the command exits 1 and says why, with the
/// database's own words, instead of a bare "internal error".
#[tokio::test]
async fn a_failed_rebuild_command_prints_its_cause() {
    let world = World::new().await;
    world.create("before the damage").await;
    let mut db = world.tasks.db.connect(&world.stack).await;
    sqlx::query("ALTER TABLE task_activity RENAME TO task_activity_gone")
        .execute(&mut db)
        .await
        .expect("damage the read model");

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tasks"))
        .arg("rebuild-read-model")
        .env("TASKMESH_VAULT__ADDR", &world.stack.vault_addr)
        .env("TASKMESH_VAULT__AUTH", "token")
        .env("TASKMESH_VAULT__TOKEN", &world.stack.vault_root_token)
        .env("TASKMESH_VAULT__SECRET_PATH", &world.tasks.db.secret_path)
        .env("TASKMESH_DATABASE__PORT", world.stack.pg_port.to_string())
        .env("TASKMESH_TELEMETRY__LOG_LEVEL", "off")
        .output()
        .await
        .expect("run tasks rebuild-read-model");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("task_activity") && stderr.contains("does not exist"),
        "the cause is missing: {stderr}"
    );
}

/// A task whose view lost its earlier versions (here: its rows are gone) is repaired from the event
/// store by the next event of that task, instead of the projector waiting forever for versions
/// that will not come again.
#[tokio::test]
async fn a_version_gap_is_repaired_from_the_event_store() {
    let world = World::new().await;
    let task = world.create("gap").await;
    let mut client = world.client();
    let update = |description: &str| UpdateTaskRequest {
        task: Some(Task {
            name: task.name.clone(),
            description: description.to_owned(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["description".into()],
        }),
    };
    client
        .update_task(as_user(OWNER, update("second")))
        .await
        .expect("v2");
    eventually("the view at version 2", || caught_up(&world)).await;

    let mut db = world.tasks.db.connect(&world.stack).await;
    for table in ["task_view", "task_activity"] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut db)
            .await
            .expect("lose the view");
    }
    client
        .update_task(as_user(OWNER, update("third")))
        .await
        .expect("v3");
    eventually("the view repaired up to version 3", || caught_up(&world)).await;
    let activity: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM task_activity ORDER BY version")
            .fetch_all(&mut db)
            .await
            .expect("activity");
    assert_eq!(activity, vec![1, 2, 3], "every version is back in the feed");
    let listed = world.list_all("").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].description, "third");
}
