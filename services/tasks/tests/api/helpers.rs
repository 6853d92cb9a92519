//! Harness: a projects app and a tasks app wired together, and a project with a board to work in.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use taskmesh_contracts::projects_v1::board_service_client::BoardServiceClient;
use taskmesh_contracts::projects_v1::member_service_client::MemberServiceClient;
use taskmesh_contracts::projects_v1::project_service_client::ProjectServiceClient;
use taskmesh_contracts::projects_v1::{
    Board, ColumnKind, CreateBoardRequest, CreateMemberRequest, CreateProjectRequest,
    ListColumnsRequest, Member, Project, Role,
};
use taskmesh_contracts::tasks_v1::task_admin_service_client::TaskAdminServiceClient;
use taskmesh_contracts::tasks_v1::task_service_client::TaskServiceClient;
use taskmesh_contracts::tasks_v1::{CreateTaskRequest, ListTasksRequest, Task};
use taskmesh_mesh::ConfigLayers;
use tokio::sync::oneshot;
use tonic::transport::Channel;

use taskmesh_testing::{Authed, DefaultCaller};
pub(crate) use taskmesh_testing::{NatsServer, Stack, TestDatabase, as_user, reason, violations};

/// The owner of the fixture project.
pub(crate) const OWNER: &str = "owner";

fn layers(base: ConfigLayers, stack: &Stack, db: &TestDatabase, nats_url: &str) -> ConfigLayers {
    taskmesh_testing::with_identity(db.app_layers(base, stack, nats_url))
}

/// A running app and its shutdown switch.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) admin_addr: SocketAddr,
    pub(crate) db: TestDatabase,
    stop: Option<oneshot::Sender<()>>,
}

impl Running {
    /// Asks the app to drain and stop.
    pub(crate) fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn start_projects(stack: &Stack, nats_url: &str) -> Running {
    let db = TestDatabase::create(stack, "tasks_test_projects").await;
    let layers = layers(
        taskmesh_projects::Config::default_layers(),
        stack,
        &db,
        nats_url,
    );
    let config = taskmesh_projects::Config::from_layers(&layers).expect("projects config");
    let app = taskmesh_projects::App::build(config)
        .await
        .expect("projects app");
    let (addr, admin_addr) = (app.grpc_addr(), app.admin_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        admin_addr,
        db,
        stop: Some(stop),
    }
}

async fn start_tasks(
    stack: &Stack,
    projects: SocketAddr,
    nats_url: &str,
    customize: impl FnOnce(ConfigLayers) -> ConfigLayers,
) -> Running {
    let db = TestDatabase::create(stack, "tasks_test").await;
    let layers = customize(
        layers(
            taskmesh_tasks::Config::default_layers(),
            stack,
            &db,
            nats_url,
        )
        .set("projects.endpoint", format!("http://{projects}")),
    );
    let config = taskmesh_tasks::Config::from_layers(&layers).expect("tasks config");
    let app = taskmesh_tasks::App::build(config).await.expect("tasks app");
    let (addr, admin_addr) = (app.grpc_addr(), app.admin_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        admin_addr,
        db,
        stop: Some(stop),
    }
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

/// Both apps on a private NATS server, a project owned by [`OWNER`] with one board, and its
/// default columns by kind. Each world has its own streams and durable consumers.
pub(crate) struct World {
    pub(crate) stack: Stack,
    pub(crate) nats: NatsServer,
    pub(crate) projects: Running,
    pub(crate) tasks: Running,
    pub(crate) projects_channel: Channel,
    pub(crate) tasks_channel: Channel,
    pub(crate) project: String,
    pub(crate) board: String,
    pub(crate) columns: HashMap<ColumnKind, String>,
}

impl World {
    pub(crate) async fn new() -> Self {
        Self::with(|l| l).await
    }

    pub(crate) async fn with(customize: impl FnOnce(ConfigLayers) -> ConfigLayers) -> Self {
        let stack = Stack::load();
        let nats = NatsServer::start(&stack).await;
        let projects = start_projects(&stack, &nats.url()).await;
        let tasks = start_tasks(&stack, projects.addr, &nats.url(), customize).await;
        let projects_channel = channel(projects.addr).await;
        let tasks_channel = channel(tasks.addr).await;
        let project =
            ProjectServiceClient::with_interceptor(projects_channel.clone(), DefaultCaller(OWNER))
                .create_project(as_user(
                    OWNER,
                    CreateProjectRequest {
                        project: Some(Project {
                            display_name: "Tasks home".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ))
                .await
                .expect("project")
                .into_inner()
                .name;
        let board =
            BoardServiceClient::with_interceptor(projects_channel.clone(), DefaultCaller(OWNER))
                .create_board(CreateBoardRequest {
                    parent: project.clone(),
                    board: Some(Board {
                        display_name: "Main".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .expect("board")
                .into_inner()
                .name;
        let columns =
            BoardServiceClient::with_interceptor(projects_channel.clone(), DefaultCaller(OWNER))
                .list_columns(ListColumnsRequest {
                    parent: board.clone(),
                    ..Default::default()
                })
                .await
                .expect("columns")
                .into_inner()
                .columns
                .into_iter()
                .filter_map(|c| ColumnKind::try_from(c.kind).ok().map(|k| (k, c.name)))
                .collect();
        Self {
            stack,
            nats,
            projects,
            tasks,
            projects_channel,
            tasks_channel,
            project,
            board,
            columns,
        }
    }

    pub(crate) fn client(&self) -> TaskServiceClient<Authed> {
        TaskServiceClient::with_interceptor(self.tasks_channel.clone(), DefaultCaller(OWNER))
    }

    pub(crate) fn admin(&self) -> TaskAdminServiceClient<Authed> {
        TaskAdminServiceClient::with_interceptor(self.tasks_channel.clone(), DefaultCaller(OWNER))
    }

    pub(crate) fn column(&self, kind: ColumnKind) -> String {
        self.columns.get(&kind).cloned().expect("default column")
    }

    /// Adds `user` to the project with `role`.
    pub(crate) async fn add_member(&self, user: &str, role: Role) {
        MemberServiceClient::with_interceptor(self.projects_channel.clone(), DefaultCaller(OWNER))
            .create_member(CreateMemberRequest {
                parent: self.project.clone(),
                member: Some(Member {
                    user: format!("users/{user}"),
                    role: role as i32,
                    ..Default::default()
                }),
            })
            .await
            .expect("add member");
    }

    /// Creates a task as the owner in the To do column.
    pub(crate) async fn create(&self, title: &str) -> Task {
        self.client()
            .create_task(as_user(
                OWNER,
                CreateTaskRequest {
                    parent: self.project.clone(),
                    task: Some(Task {
                        title: title.into(),
                        column: self.column(ColumnKind::Todo),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("create task")
            .into_inner()
    }

    /// Lists every task matching `filter` (all pages).
    pub(crate) async fn list_all(&self, filter: &str) -> Vec<Task> {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .client()
                .list_tasks(as_user(
                    OWNER,
                    ListTasksRequest {
                        parent: self.project.clone(),
                        page_size: 1000,
                        page_token: token.clone(),
                        filter: filter.into(),
                        ..Default::default()
                    },
                ))
                .await
                .expect("list")
                .into_inner();
            all.extend(page.tasks);
            if page.next_page_token.is_empty() {
                return all;
            }
            token = page.next_page_token;
        }
    }
}

/// Polls `check` until it returns true (up to 30 s).
/// A CreateTask request for `task` in the world's project.
pub(crate) fn create_in(world: &World, task: Task, request_id: &str) -> CreateTaskRequest {
    CreateTaskRequest {
        parent: world.project.clone(),
        task: Some(task),
        request_id: request_id.into(),
    }
}

pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}
