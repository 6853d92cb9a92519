//! BoardService: boards with their default columns, column order, kinds and the column limit.

use taskmesh_contracts::projects_v1::{
    Board, Column, ColumnKind, CreateBoardRequest, CreateColumnRequest, CreateProjectRequest,
    DeleteBoardRequest, DeleteColumnRequest, GetBoardRequest, ListBoardsRequest,
    ListColumnsRequest, MoveColumnRequest, Project, UndeleteBoardRequest, UpdateBoardRequest,
    UpdateColumnRequest,
};
use tonic::Code;

use crate::helpers::{TestApp, reason, spawn_app, spawn_app_with, violations};

async fn project(app: &TestApp) -> String {
    app.projects()
        .create_project(CreateProjectRequest {
            project: Some(Project {
                display_name: "Board home".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("project")
        .into_inner()
        .name
}

async fn board(app: &TestApp, parent: &str, name: &str) -> Board {
    app.boards()
        .create_board(CreateBoardRequest {
            parent: parent.into(),
            board: Some(Board {
                display_name: name.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("board")
        .into_inner()
}

async fn columns(app: &TestApp, board: &str) -> Vec<Column> {
    app.boards()
        .list_columns(ListColumnsRequest {
            parent: board.into(),
            ..Default::default()
        })
        .await
        .expect("columns")
        .into_inner()
        .columns
}

fn names(columns: &[Column]) -> Vec<&str> {
    columns.iter().map(|c| c.display_name.as_str()).collect()
}

#[tokio::test]
async fn a_new_board_gets_the_four_default_columns() {
    let app = spawn_app().await;
    let parent = project(&app).await;
    let created = board(&app, &parent, "Sprint 1").await;
    assert!(created.name.starts_with(&format!("{parent}/boards/")));
    let columns = columns(&app, &created.name).await;
    assert_eq!(names(&columns), vec!["Backlog", "To do", "Doing", "Done"]);
    let kinds: Vec<i32> = columns.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ColumnKind::Backlog as i32,
            ColumnKind::Todo as i32,
            ColumnKind::Doing as i32,
            ColumnKind::Done as i32
        ]
    );
    let positions: Vec<i32> = columns.iter().map(|c| c.position).collect();
    assert_eq!(positions, vec![0, 1, 2, 3]);

    let done = app
        .boards()
        .list_columns(ListColumnsRequest {
            parent: created.name.clone(),
            filter: "kind = COLUMN_KIND_DONE".into(),
            ..Default::default()
        })
        .await
        .expect("filter by kind")
        .into_inner();
    assert_eq!(names(&done.columns), vec!["Done"]);
}

#[tokio::test]
async fn columns_move_and_delete_keeping_a_dense_order() {
    let app = spawn_app().await;
    let parent = project(&app).await;
    let created = board(&app, &parent, "Flow").await;
    let mut client = app.boards();
    let review = client
        .create_column(CreateColumnRequest {
            parent: created.name.clone(),
            column: Some(Column {
                display_name: "Review".into(),
                kind: ColumnKind::Custom as i32,
                ..Default::default()
            }),
            column_id: "review".into(),
            request_id: String::new(),
        })
        .await
        .expect("create column")
        .into_inner();
    assert_eq!(review.position, 4);

    let moved = client
        .move_column(MoveColumnRequest {
            name: review.name.clone(),
            position: 3,
            etag: review.etag.clone(),
        })
        .await
        .expect("move")
        .into_inner();
    assert_eq!(moved.position, 3);
    assert_eq!(
        names(&columns(&app, &created.name).await),
        vec!["Backlog", "To do", "Doing", "Review", "Done"]
    );

    let to_front = client
        .move_column(MoveColumnRequest {
            name: review.name.clone(),
            position: 0,
            etag: String::new(),
        })
        .await
        .expect("move to front")
        .into_inner();
    assert_eq!(to_front.position, 0);
    let stale = client
        .move_column(MoveColumnRequest {
            name: review.name.clone(),
            position: 2,
            etag: moved.etag,
        })
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    let beyond = client
        .move_column(MoveColumnRequest {
            name: review.name.clone(),
            position: 99,
            etag: String::new(),
        })
        .await
        .expect("clamped")
        .into_inner();
    assert_eq!(beyond.position, 4);
    let negative = client
        .move_column(MoveColumnRequest {
            name: review.name.clone(),
            position: -1,
            etag: String::new(),
        })
        .await
        .expect_err("negative");
    assert_eq!(violations(&negative), vec!["position"]);

    let all = columns(&app, &created.name).await;
    let doing = all
        .iter()
        .find(|c| c.display_name == "Doing")
        .expect("doing");
    client
        .delete_column(DeleteColumnRequest {
            name: doing.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("delete");
    let after = columns(&app, &created.name).await;
    assert_eq!(names(&after), vec!["Backlog", "To do", "Done", "Review"]);
    assert_eq!(
        after.iter().map(|c| c.position).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );

    let renamed = client
        .update_column(UpdateColumnRequest {
            column: Some(Column {
                name: review.name.clone(),
                display_name: "QA".into(),
                kind: ColumnKind::Doing as i32,
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect("update column")
        .into_inner();
    assert_eq!(renamed.display_name, "QA");
    assert_eq!(renamed.kind, ColumnKind::Doing as i32);
    let clash = client
        .update_column(UpdateColumnRequest {
            column: Some(Column {
                name: review.name.clone(),
                display_name: "done".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .expect_err("name clash");
    assert_eq!(clash.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn a_board_holds_at_most_the_configured_number_of_columns() {
    let app = spawn_app_with(|l| l.set("limits.max_columns_per_board", 6)).await;
    let parent = project(&app).await;
    let created = board(&app, &parent, "Full").await;
    let mut client = app.boards();
    let add = |name: &str| CreateColumnRequest {
        parent: created.name.clone(),
        column: Some(Column {
            display_name: name.into(),
            kind: ColumnKind::Custom as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    client.create_column(add("Five")).await.expect("5");
    client.create_column(add("Six")).await.expect("6");
    let err = client.create_column(add("Seven")).await.expect_err("limit");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "COLUMN_LIMIT_REACHED");

    let invalid = client
        .create_column(CreateColumnRequest {
            parent: created.name.clone(),
            column: Some(Column {
                display_name: "x".repeat(33),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("invalid");
    let mut fields = violations(&invalid);
    fields.sort();
    assert_eq!(fields, vec!["column.display_name", "column.kind"]);
}

#[tokio::test]
async fn boards_update_delete_and_undelete() {
    let app = spawn_app().await;
    let parent = project(&app).await;
    let created = board(&app, &parent, "Q1").await;
    let mut client = app.boards();
    let updated = client
        .update_board(UpdateBoardRequest {
            board: Some(Board {
                name: created.name.clone(),
                display_name: "Q2".into(),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.display_name, "Q2");
    let invalid = client
        .update_board(UpdateBoardRequest {
            board: Some(Board {
                name: created.name.clone(),
                display_name: " ".into(),
                description: "d".repeat(1025),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into(), "description".into()],
            }),
        })
        .await
        .expect_err("blank name, long description");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let mut fields = violations(&invalid);
    fields.sort();
    assert_eq!(fields, vec!["board.description", "board.display_name"]);
    let err = client
        .create_board(CreateBoardRequest {
            parent: parent.clone(),
            board: Some(Board {
                display_name: "q2".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("duplicate");
    assert_eq!(err.code(), Code::AlreadyExists);

    client
        .delete_board(DeleteBoardRequest {
            name: created.name.clone(),
            etag: updated.etag,
        })
        .await
        .expect("delete");
    let twice = client
        .delete_board(DeleteBoardRequest {
            name: created.name.clone(),
            etag: String::new(),
        })
        .await
        .expect_err("delete twice");
    assert_eq!(twice.code(), Code::NotFound);
    let listed = client
        .list_boards(ListBoardsRequest {
            parent: parent.clone(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.boards.is_empty());
    let column = client
        .create_column(CreateColumnRequest {
            parent: created.name.clone(),
            column: Some(Column {
                display_name: "Late".into(),
                kind: ColumnKind::Custom as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("deleted board");
    assert_eq!(reason(&column), "PARENT_DELETED");
    client
        .undelete_board(UndeleteBoardRequest {
            name: created.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("undelete");
    let live = client
        .undelete_board(UndeleteBoardRequest {
            name: created.name.clone(),
            etag: String::new(),
        })
        .await
        .expect_err("undelete a live board");
    assert_eq!(live.code(), Code::FailedPrecondition);
    assert_eq!(reason(&live), "NOT_DELETED");
    let fetched = client
        .get_board(GetBoardRequest { name: created.name })
        .await
        .expect("get")
        .into_inner();
    assert!(fetched.delete_time.is_none());

    let missing_parent = client
        .create_board(CreateBoardRequest {
            parent: "projects/absent".into(),
            board: Some(Board {
                display_name: "X".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("missing project");
    assert_eq!(missing_parent.code(), Code::PermissionDenied);
}
