//! The tasks service remembers members' roles and board columns (taskmesh_clients::ProjectCache):
//! answers come from memory while nothing changes (the projects service can even be down), and a
//! change made in the projects service takes effect as soon as its event is out.

use std::time::{Duration, Instant};

use taskmesh_contracts::projects_v1::board_service_client::BoardServiceClient;
use taskmesh_contracts::projects_v1::member_service_client::MemberServiceClient;
use taskmesh_contracts::projects_v1::{
    Column, ColumnKind, DeleteMemberRequest, Member, Role, UpdateColumnRequest, UpdateMemberRequest,
};
use taskmesh_contracts::tasks_v1::{CreateTaskRequest, GetTaskRequest, Status as TaskStatus, Task};
use tonic::{Code, Status};

use crate::helpers::{OWNER, World, as_user};

/// How long a change may take to reach the cache: the outbox relay and the broker, with room for a
/// loaded machine. A cache that never forgets fails the test after it.
const PATIENCE: Duration = Duration::from_secs(15);

async fn create_as(world: &World, user: &str, kind: ColumnKind) -> Result<Task, Status> {
    world
        .client()
        .create_task(as_user(
            user,
            CreateTaskRequest {
                parent: world.project.clone(),
                task: Some(Task {
                    title: "cached".into(),
                    column: world.column(kind),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn get_as(world: &World, user: &str, name: &str) -> Result<Task, Status> {
    world
        .client()
        .get_task(as_user(user, GetTaskRequest { name: name.into() }))
        .await
        .map(tonic::Response::into_inner)
}

/// Retries `call` until `done` holds for its answer, panicking after [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, mut call: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
    T: std::fmt::Debug,
{
    let start = Instant::now();
    loop {
        let answer = call().await;
        if done(&answer) {
            return answer;
        }
        assert!(start.elapsed() < PATIENCE, "{what}: still {answer:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn refused(answer: &Result<Task, Status>) -> bool {
    matches!(answer, Err(status) if status.code() == Code::PermissionDenied)
}

#[tokio::test]
async fn role_changes_and_removals_take_effect_once_their_event_is_out() {
    let world = World::new().await;
    world.add_member("mia", Role::Member).await;
    let task = create_as(&world, "mia", ColumnKind::Todo)
        .await
        .expect("a member writes");
    let members = || MemberServiceClient::new(world.projects_channel.clone());
    let mia = format!("{}/members/mia", world.project);

    members()
        .update_member(as_user(
            OWNER,
            UpdateMemberRequest {
                member: Some(Member {
                    name: mia.clone(),
                    role: Role::Viewer as i32,
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .expect("demote");
    let _ = eventually(
        "a demoted member still writes",
        || create_as(&world, "mia", ColumnKind::Todo),
        refused,
    )
    .await;
    get_as(&world, "mia", &task.name)
        .await
        .expect("a viewer reads");

    members()
        .delete_member(as_user(
            OWNER,
            DeleteMemberRequest {
                name: mia.clone(),
                etag: String::new(),
            },
        ))
        .await
        .expect("remove");
    let _ = eventually(
        "a removed member still reads",
        || get_as(&world, "mia", &task.name),
        refused,
    )
    .await;

    // "Not a member" was remembered too; adding her back must forget it.
    world.add_member("mia", Role::Member).await;
    let _ = eventually(
        "a member added back is still refused",
        || create_as(&world, "mia", ColumnKind::Todo),
        Result::is_ok,
    )
    .await;
}

#[tokio::test]
async fn a_column_change_reaches_new_tasks_once_its_event_is_out() {
    let world = World::new().await;
    let before = create_as(&world, OWNER, ColumnKind::Todo)
        .await
        .expect("create");
    assert_eq!(before.status, TaskStatus::Todo as i32);
    BoardServiceClient::new(world.projects_channel.clone())
        .update_column(as_user(
            OWNER,
            UpdateColumnRequest {
                column: Some(Column {
                    name: world.column(ColumnKind::Todo),
                    kind: ColumnKind::Doing as i32,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["kind".into()],
                }),
            },
        ))
        .await
        .expect("change the column's kind");
    let _ = eventually(
        "a task created in a column whose kind changed keeps the old status",
        || create_as(&world, OWNER, ColumnKind::Todo),
        |answer| matches!(answer, Ok(task) if task.status == TaskStatus::Doing as i32),
    )
    .await;
}

#[tokio::test]
async fn remembered_answers_serve_while_the_projects_service_is_down() {
    let mut world = World::new().await;
    world.add_member("mia", Role::Member).await;
    world.add_member("ned", Role::Member).await;
    let task = create_as(&world, "mia", ColumnKind::Todo)
        .await
        .expect("create");
    get_as(&world, "mia", &task.name).await.expect("read");

    world.projects.stop();
    // Ned was never asked about: his answer needs the projects service, which is gone.
    let ned = eventually(
        "the projects service is still answering",
        || get_as(&world, "ned", &task.name),
        |answer| matches!(answer, Err(status) if status.code() == Code::Unavailable),
    )
    .await;
    assert!(ned.is_err());
    get_as(&world, "mia", &task.name)
        .await
        .expect("mia's role is remembered");
    create_as(&world, "mia", ColumnKind::Todo)
        .await
        .expect("mia's role and the column are remembered");
}
