//! Comments, work logs and the activity feed.

use taskmesh_contracts::projects_v1::{ColumnKind, Role};
use taskmesh_contracts::tasks_v1::{
    AddCommentRequest, Comment, DeleteCommentRequest, ListCommentsRequest, ListTaskActivityRequest,
    ListWorkLogsRequest, LogWorkRequest, MoveTaskRequest, UpdateCommentRequest, WorkLog,
};
use tonic::Code;

use crate::helpers::{OWNER, World, as_user, eventually, violations};

#[tokio::test]
async fn comments_are_added_edited_by_their_author_and_deleted() {
    let world = World::new().await;
    world.add_member("bob", Role::Member).await;
    let task = world.create("Discuss").await;
    let mut client = world.client();
    let comment = client
        .add_comment(as_user(
            OWNER,
            AddCommentRequest {
                request_id: String::new(),
                parent: task.name.clone(),
                comment: Some(Comment {
                    text: "First!".into(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("add")
        .into_inner();
    assert!(
        comment
            .name
            .starts_with(&format!("{}/comments/", task.name))
    );
    assert_eq!(comment.author, "users/owner");

    let too_long = client
        .add_comment(as_user(
            OWNER,
            AddCommentRequest {
                request_id: String::new(),
                parent: task.name.clone(),
                comment: Some(Comment {
                    text: "x".repeat(513),
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect_err("too long");
    assert_eq!(violations(&too_long), vec!["comment.text"]);

    let not_author = client
        .update_comment(as_user(
            "bob",
            UpdateCommentRequest {
                comment: Some(Comment {
                    name: comment.name.clone(),
                    text: "Mine now".into(),
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .expect_err("not the author");
    assert_eq!(not_author.code(), Code::PermissionDenied);

    let edited = client
        .update_comment(as_user(
            OWNER,
            UpdateCommentRequest {
                comment: Some(Comment {
                    name: comment.name.clone(),
                    text: "First, edited".into(),
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .expect("edit")
        .into_inner();
    assert_eq!(edited.text, "First, edited");

    client
        .add_comment(as_user(
            "bob",
            AddCommentRequest {
                request_id: String::new(),
                parent: task.name.clone(),
                comment: Some(Comment {
                    text: "Second".into(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("bob comments");
    client
        .delete_comment(as_user(
            OWNER,
            DeleteCommentRequest {
                name: comment.name.clone(),
            },
        ))
        .await
        .expect("delete");
    let listed = client
        .list_comments(as_user(
            OWNER,
            ListCommentsRequest {
                parent: task.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    let texts: Vec<&str> = listed.comments.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, vec!["Second"]);
    let gone = client
        .delete_comment(as_user(OWNER, DeleteCommentRequest { name: comment.name }))
        .await
        .expect_err("already deleted");
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn work_is_logged_totalled_and_validated() {
    let world = World::new().await;
    let task = world.create("Build").await;
    let mut client = world.client();
    let log = |seconds: i64, day: &str| LogWorkRequest {
        request_id: String::new(),
        parent: task.name.clone(),
        work_log: Some(WorkLog {
            duration: Some(prost_types::Duration { seconds, nanos: 0 }),
            day: day.into(),
            note: "focus".into(),
            ..Default::default()
        }),
    };
    client
        .log_work(as_user(OWNER, log(3600, "2026-11-20")))
        .await
        .expect("log 1h");
    client
        .log_work(as_user(OWNER, log(1800, "2026-11-21")))
        .await
        .expect("log 30m");
    let bad = client
        .log_work(as_user(OWNER, log(0, "21.11.2026")))
        .await
        .expect_err("invalid");
    let mut fields = violations(&bad);
    fields.sort();
    assert_eq!(fields, vec!["work_log.day", "work_log.duration"]);

    let listed = client
        .list_work_logs(as_user(
            OWNER,
            ListWorkLogsRequest {
                parent: task.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.work_logs.len(), 2);
    assert_eq!(
        listed.total,
        Some(prost_types::Duration {
            seconds: 5400,
            nanos: 0
        })
    );
    assert_eq!(listed.work_logs[0].author, "users/owner");
}

#[tokio::test]
async fn the_activity_feed_tells_the_task_history_in_order() {
    let world = World::new().await;
    let task = world.create("Story").await;
    let mut client = world.client();
    client
        .move_task(as_user(
            OWNER,
            MoveTaskRequest {
                name: task.name.clone(),
                column: world.column(ColumnKind::Doing),
                position: 0,
                etag: String::new(),
            },
        ))
        .await
        .expect("move");
    client
        .add_comment(as_user(
            OWNER,
            AddCommentRequest {
                request_id: String::new(),
                parent: task.name.clone(),
                comment: Some(Comment {
                    text: "Going".into(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("comment");
    let activity = || async {
        client
            .clone()
            .list_task_activity(as_user(
                OWNER,
                ListTaskActivityRequest {
                    parent: task.name.clone(),
                    ..Default::default()
                },
            ))
            .await
            .expect("activity")
            .into_inner()
            .activities
    };
    eventually("three activity entries", || async {
        activity().await.len() == 3
    })
    .await;
    let entries = activity().await;
    let types: Vec<&str> = entries.iter().map(|a| a.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec![
            "taskmesh.tasks.v1.TaskCreated",
            "taskmesh.tasks.v1.TaskMoved",
            "taskmesh.tasks.v1.CommentAdded"
        ]
    );
    assert_eq!(
        entries.iter().map(|a| a.version).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(entries[1].summary.contains("moved"));
    assert_eq!(entries[0].actor, "users/owner");
}

/// A client that retries AddComment or LogWork with the same request id (its first answer was
/// lost) gets the first comment or work log back, and the task has exactly one of each; a request
/// id that is not a UUID is refused.
#[tokio::test]
async fn retried_comments_and_work_logs_with_a_request_id_are_added_once() {
    let world = World::new().await;
    let task = world.create("Retry me").await;
    let mut client = world.client();
    let key = uuid::Uuid::new_v4().to_string();
    let comment = |text: &str, request_id: &str| AddCommentRequest {
        request_id: request_id.to_owned(),
        parent: task.name.clone(),
        comment: Some(Comment {
            text: text.into(),
            ..Default::default()
        }),
    };
    let first = client
        .add_comment(as_user(OWNER, comment("once", &key)))
        .await
        .expect("first")
        .into_inner();
    let again = client
        .add_comment(as_user(OWNER, comment("once", &key)))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(first, again, "the retry answers with the first comment");
    let listed = client
        .list_comments(as_user(
            OWNER,
            ListCommentsRequest {
                parent: task.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.comments.len(), 1);

    let log = |request_id: &str| LogWorkRequest {
        request_id: request_id.to_owned(),
        parent: task.name.clone(),
        work_log: Some(WorkLog {
            duration: Some(prost_types::Duration {
                seconds: 1800,
                nanos: 0,
            }),
            day: "2026-11-30".into(),
            ..Default::default()
        }),
    };
    let key = uuid::Uuid::new_v4().to_string();
    let logged = client
        .log_work(as_user(OWNER, log(&key)))
        .await
        .expect("log")
        .into_inner();
    let relogged = client
        .log_work(as_user(OWNER, log(&key)))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(logged, relogged);
    let logs = client
        .list_work_logs(as_user(
            OWNER,
            ListWorkLogsRequest {
                parent: task.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(logs.work_logs.len(), 1);

    let bad = client
        .add_comment(as_user(OWNER, comment("x", "not-a-uuid")))
        .await
        .expect_err("bad request id");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(violations(&bad), vec!["request_id"]);
}
