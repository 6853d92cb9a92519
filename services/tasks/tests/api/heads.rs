//! What each task's head keeps beside its version: the board's live-task counter behind the quota,
//! and the snapshot a task is loaded from.

use taskmesh_contracts::projects_v1::ColumnKind;
use taskmesh_contracts::tasks_v1::{
    DeleteTaskRequest, GetTaskRequest, Task, UndeleteTaskRequest, UpdateTaskRequest,
};
use tonic::Code;

use crate::helpers::{OWNER, World, as_user, create_in, reason};

/// The board quota counts live tasks: a delete frees a place, an undelete takes one (and is
/// refused on a full board), and creates racing for the last places get exactly the places left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_board_refuses_more_tasks_with_a_quota_reason() {
    let world = World::with(|l| l.set("limits.max_tasks_per_board", 2)).await;
    let create = |title: &'static str| {
        let mut client = world.client();
        let request = create_in(
            &world,
            Task {
                title: title.into(),
                column: world.column(ColumnKind::Todo),
                ..Default::default()
            },
            "",
        );
        async move { client.create_task(as_user(OWNER, request)).await }
    };
    let one = world.create("One").await;
    let two = world.create("Two").await;
    let err = create("Three").await.expect_err("quota");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "TASK_QUOTA_EXCEEDED");

    let delete = |name: String| {
        let mut client = world.client();
        async move {
            client
                .delete_task(as_user(
                    OWNER,
                    DeleteTaskRequest {
                        name,
                        etag: String::new(),
                    },
                ))
                .await
        }
    };
    delete(one.name.clone()).await.expect("delete");
    let three = create("Three")
        .await
        .expect("a delete frees a place")
        .into_inner();
    let undelete = world
        .client()
        .undelete_task(as_user(
            OWNER,
            UndeleteTaskRequest {
                name: one.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .expect_err("the board is full again");
    assert_eq!(reason(&undelete), "TASK_QUOTA_EXCEEDED");
    delete(three.name).await.expect("delete");
    world
        .client()
        .undelete_task(as_user(
            OWNER,
            UndeleteTaskRequest {
                name: one.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .expect("an undelete takes the freed place");

    // Two places freed, eight creates at once: exactly two land.
    delete(one.name).await.expect("delete");
    delete(two.name).await.expect("delete");
    let raced =
        futures::future::join_all(["a", "b", "c", "d", "e", "f", "g", "h"].map(&create)).await;
    let landed = raced.iter().filter(|r| r.is_ok()).count();
    assert_eq!(landed, 2, "{raced:?}");
    assert!(
        raced
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| reason(e) == "TASK_QUOTA_EXCEEDED"),
        "{raced:?}"
    );
}

/// A task is loaded from the snapshot kept with its head (one row, however long its history),
/// which is the same state its events fold to; a head from before snapshots is folded from its
/// events.
#[tokio::test]
async fn a_task_loads_from_its_snapshot_which_matches_its_events() {
    let world = World::new().await;
    let task = world.create("Snapshot").await;
    let mut client = world.client();
    let update = |title: String| UpdateTaskRequest {
        task: Some(Task {
            name: task.name.clone(),
            title,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["title".into()],
        }),
    };
    for n in 0..40 {
        client
            .update_task(as_user(OWNER, update(format!("title {n}"))))
            .await
            .expect("update");
    }
    let get = || {
        let mut client = world.client();
        let name = task.name.clone();
        async move {
            client
                .get_task(as_user(OWNER, GetTaskRequest { name }))
                .await
                .expect("get")
                .into_inner()
        }
    };
    let from_snapshot = get().await;
    assert_eq!(from_snapshot.title, "title 39");
    assert_eq!(from_snapshot.etag, "v41");

    let id = uuid::Uuid::parse_str(task.name.rsplit('/').next().expect("id")).expect("uuid");
    let mut db = world.tasks.db.connect(&world.stack).await;
    sqlx::query("UPDATE task_heads SET snapshot = NULL, snapshot_version = 0 WHERE task_id = $1")
        .bind(id)
        .execute(&mut db)
        .await
        .expect("forget the snapshot");
    assert_eq!(get().await, from_snapshot, "folded from the events");

    client
        .update_task(as_user(OWNER, update("after".into())))
        .await
        .expect("update");
    sqlx::query("DELETE FROM task_events WHERE task_id = $1")
        .bind(id)
        .execute(&mut db)
        .await
        .expect("drop the history");
    let loaded = get().await;
    assert_eq!(
        (loaded.title.as_str(), loaded.etag.as_str()),
        ("after", "v42"),
        "read from the snapshot alone"
    );
}
