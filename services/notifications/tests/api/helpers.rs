//! Harness: projects, tasks and notifications apps on a private NATS, a real SMTP server, a
//! project owned by [`OWNER`] with a board, and a webhook receiver that answers as told.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use prost::Name;
use taskmesh_contracts::notifications_v1::notification_service_client::NotificationServiceClient;
use taskmesh_contracts::notifications_v1::webhook_service_client::WebhookServiceClient;
use taskmesh_contracts::notifications_v1::{
    CreateWebhookRequest, ListNotificationsRequest, Notification, Webhook,
};
use taskmesh_contracts::projects_v1::board_service_client::BoardServiceClient;
use taskmesh_contracts::projects_v1::member_service_client::MemberServiceClient;
use taskmesh_contracts::projects_v1::project_service_client::ProjectServiceClient;
use taskmesh_contracts::projects_v1::{
    Board, ColumnKind, CreateBoardRequest, CreateMemberRequest, CreateProjectRequest,
    ListColumnsRequest, Member, Project, Role,
};
use taskmesh_contracts::tasks_v1::task_service_client::TaskServiceClient;
use taskmesh_contracts::tasks_v1::{CreateTaskRequest, Task};
use taskmesh_mesh::ConfigLayers;
use tonic::transport::Channel;

use taskmesh_testing::{Authed, DefaultCaller, RunningApp};
pub(crate) use taskmesh_testing::{NatsServer, SmtpServer, Stack, TestDatabase};

/// The owner of the fixture project.
pub(crate) const OWNER: &str = "ann";

/// How long a test waits for something to arrive.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// Fast loops for tests; webhooks may reach this machine.
fn test_settings(layers: ConfigLayers) -> ConfigLayers {
    layers
        .set("email.poll_ms", 100)
        .set("webhooks.poll_ms", 100)
        .set("webhooks.first_backoff_ms", 100)
        .set("webhooks.max_backoff_ms", 400)
        .set("webhooks.egress.allow_networks", vec!["127.0.0.1/32"])
        .set("agenda.poll_ms", 200)
        .set("shutdown.grace_period_ms", 1000)
}

/// The apps, the mail server and a project.
pub(crate) struct World {
    pub(crate) stack: Stack,
    pub(crate) nats: NatsServer,
    /// One connection to it for the test's own publishing and consumer checks.
    js: async_nats::jetstream::Context,
    pub(crate) smtp: SmtpServer,
    _projects: RunningApp,
    _tasks: RunningApp,
    pub(crate) notifications: RunningApp,
    pub(crate) db: TestDatabase,
    projects_addr: SocketAddr,
    pub(crate) projects_channel: Channel,
    pub(crate) tasks_channel: Channel,
    pub(crate) channel: Channel,
    pub(crate) project: String,
    pub(crate) columns: HashMap<ColumnKind, String>,
}

impl World {
    pub(crate) async fn new() -> Self {
        Self::with(|l| l).await
    }

    /// A world whose notifications settings get `customize` last.
    pub(crate) async fn with(customize: fn(ConfigLayers) -> ConfigLayers) -> Self {
        let stack = Stack::load();
        let nats = NatsServer::start(&stack).await;
        let smtp = SmtpServer::start(&stack).await;
        let projects_db = TestDatabase::create(&stack, "notifications_test_projects").await;
        let layers = taskmesh_testing::with_identity(projects_db.app_layers(
            taskmesh_projects::Config::default_layers(),
            &stack,
            &nats.url(),
        ));
        let projects = RunningApp::start(
            taskmesh_projects::App::build(
                taskmesh_projects::Config::from_layers(&layers).expect("projects config"),
            )
            .await
            .expect("projects app"),
        );
        let tasks_db = TestDatabase::create(&stack, "notifications_test_tasks").await;
        let layers = taskmesh_testing::with_identity(tasks_db.app_layers(
            taskmesh_tasks::Config::default_layers(),
            &stack,
            &nats.url(),
        ))
        .set("projects.endpoint", format!("http://{}", projects.addr));
        let tasks = RunningApp::start(
            taskmesh_tasks::App::build(
                taskmesh_tasks::Config::from_layers(&layers).expect("tasks config"),
            )
            .await
            .expect("tasks app"),
        );
        let db = TestDatabase::create(&stack, "notifications_test").await;
        db.store_secret(
            &stack,
            "smtp",
            &serde_json::json!({
                "host": "127.0.0.1",
                "port": smtp.port,
                "tls": "none",
                "from": "taskmesh <notifications@taskmesh.test>",
            }),
        )
        .await;
        let notifications = start_notifications(&stack, &db, &nats, projects.addr, customize).await;
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.expect("nats"));
        let mut world = Self {
            js,
            projects_channel: projects.channel().await,
            tasks_channel: tasks.channel().await,
            channel: notifications.channel().await,
            projects_addr: projects.addr,
            stack,
            nats,
            smtp,
            _projects: projects,
            _tasks: tasks,
            notifications,
            db,
            project: String::new(),
            columns: HashMap::new(),
        };
        world.fixture_project().await;
        world
    }

    /// The projects service's address (for a notifications process started by a test).
    pub(crate) fn projects_addr(&self) -> SocketAddr {
        self.projects_addr
    }

    async fn fixture_project(&mut self) {
        self.project = ProjectServiceClient::with_interceptor(
            self.projects_channel.clone(),
            DefaultCaller(OWNER),
        )
        .create_project(CreateProjectRequest {
            project: Some(Project {
                display_name: "Launch".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("project")
        .into_inner()
        .name;
        let board = BoardServiceClient::with_interceptor(
            self.projects_channel.clone(),
            DefaultCaller(OWNER),
        )
        .create_board(CreateBoardRequest {
            parent: self.project.clone(),
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
        self.columns = BoardServiceClient::with_interceptor(
            self.projects_channel.clone(),
            DefaultCaller(OWNER),
        )
        .list_columns(ListColumnsRequest {
            parent: board,
            ..Default::default()
        })
        .await
        .expect("columns")
        .into_inner()
        .columns
        .into_iter()
        .filter_map(|c| ColumnKind::try_from(c.kind).ok().map(|k| (k, c.name)))
        .collect();
    }

    pub(crate) fn column(&self, kind: ColumnKind) -> String {
        self.columns.get(&kind).cloned().expect("default column")
    }

    /// Adds `user` to the project as `role`, as [`OWNER`].
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

    /// The tasks service as `user`.
    pub(crate) fn tasks(&self, user: &'static str) -> TaskServiceClient<Authed> {
        TaskServiceClient::with_interceptor(self.tasks_channel.clone(), DefaultCaller(user))
    }

    /// The projects' members as `user`.
    pub(crate) fn members(&self, user: &'static str) -> MemberServiceClient<Authed> {
        MemberServiceClient::with_interceptor(self.projects_channel.clone(), DefaultCaller(user))
    }

    /// The notifications service as `user`.
    pub(crate) fn inbox_of(&self, user: &'static str) -> NotificationServiceClient<Authed> {
        NotificationServiceClient::with_interceptor(self.channel.clone(), DefaultCaller(user))
    }

    /// Webhooks as `user`.
    pub(crate) fn webhooks(&self, user: &'static str) -> WebhookServiceClient<Authed> {
        WebhookServiceClient::with_interceptor(self.channel.clone(), DefaultCaller(user))
    }

    /// A request for an active webhook of the project to `url`, for what passes `filter`.
    pub(crate) fn new_webhook(&self, url: &str, filter: &str) -> CreateWebhookRequest {
        CreateWebhookRequest {
            parent: self.project.clone(),
            webhook: Some(Webhook {
                url: url.into(),
                filter: filter.into(),
                active: true,
                ..Default::default()
            }),
            request_id: String::new(),
        }
    }

    /// Creates a task in To do as `user`, assigned to `assignee` (empty for none).
    pub(crate) async fn create_task(
        &self,
        user: &'static str,
        title: &str,
        assignee: &str,
    ) -> Task {
        self.tasks(user)
            .create_task(CreateTaskRequest {
                parent: self.project.clone(),
                task: Some(Task {
                    title: title.into(),
                    column: self.column(ColumnKind::Todo),
                    assignee: if assignee.is_empty() {
                        String::new()
                    } else {
                        format!("users/{assignee}")
                    },
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("create task")
            .into_inner()
    }

    /// `user`'s whole inbox, newest first.
    pub(crate) async fn inbox(&self, user: &'static str) -> Vec<Notification> {
        self.inbox_of(user)
            .list_notifications(ListNotificationsRequest {
                parent: format!("users/{user}"),
                page_size: 1000,
                ..Default::default()
            })
            .await
            .expect("list notifications")
            .into_inner()
            .notifications
    }

    /// Waits until `user` has at least `count` notifications, then a little more (so that one too
    /// many would show), and returns them.
    pub(crate) async fn wait_inbox(&self, user: &'static str, count: usize) -> Vec<Notification> {
        self.wait_inbox_within(user, count, PATIENCE).await
    }

    /// [`wait_inbox`](Self::wait_inbox) with its own patience.
    pub(crate) async fn wait_inbox_within(
        &self,
        user: &'static str,
        count: usize,
        patience: Duration,
    ) -> Vec<Notification> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let inbox = self.inbox(user).await;
            if inbox.len() >= count {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return self.inbox(user).await;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{user} has {} notifications, expected {count}: {inbox:#?}",
                inbox.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the notifications consumer of `stream` has nothing pending, so that what an
    /// event would have made has been made.
    pub(crate) async fn settle(&self) {
        let js = &self.js;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        for (stream, durable) in [
            ("TASKS", "notifications-tasks"),
            ("PROJECTS", "notifications-projects"),
            ("EXECUTION", "notifications-execution"),
            ("SCHEDULER", "notifications-scheduler"),
            ("IDENTITY", "notifications-identity"),
            ("BOOKINGS", "notifications-bookings"),
        ] {
            loop {
                let pending = match js.get_stream(stream).await {
                    Ok(s) => match s
                        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(durable)
                        .await
                    {
                        Ok(mut c) => c
                            .info()
                            .await
                            .map(|i| i.num_pending + i.num_ack_pending as u64)
                            .unwrap_or(1),
                        Err(_) => 0,
                    },
                    Err(_) => 0,
                };
                if pending == 0 {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{durable} never settled"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Publishes `event` as its owning service would: on its subject, with its type and id.
    pub(crate) async fn publish<M: Name>(&self, resource: &str, event: &M) -> String {
        self.publisher().publish(resource, event).await
    }

    /// A publisher on this world's NATS connection (to hand to another task).
    pub(crate) fn publisher(&self) -> Publisher {
        Publisher(self.js.clone())
    }

    /// Registers `user` with `email` as the identity service would announce it.
    pub(crate) async fn register(&self, user: &str, email: &str) {
        use taskmesh_contracts::identity_v1::{User, UserActivated};
        self.publish(
            &format!("users/{user}"),
            &UserActivated {
                user: Some(User {
                    name: format!("users/{user}"),
                    email: email.into(),
                    display_name: user.to_uppercase(),
                    ..Default::default()
                }),
            },
        )
        .await;
    }
}

async fn start_notifications(
    stack: &Stack,
    db: &TestDatabase,
    nats: &NatsServer,
    projects: SocketAddr,
    customize: fn(ConfigLayers) -> ConfigLayers,
) -> RunningApp {
    let layers = customize(test_settings(
        taskmesh_testing::with_identity(db.app_layers(
            taskmesh_notifications::Config::default_layers(),
            stack,
            &nats.url(),
        ))
        .set("projects.endpoint", format!("http://{projects}")),
    ));
    RunningApp::start(
        taskmesh_notifications::App::build(
            taskmesh_notifications::Config::from_layers(&layers).expect("notifications config"),
        )
        .await
        .expect("notifications app"),
    )
}

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: String,
}

/// A webhook endpoint on this machine that records what it gets and answers with the statuses
/// it is given, in order (200 when none is left).
#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    pub(crate) async fn start(answers: &[u16]) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let queue = Arc::new(Mutex::new(answers.iter().copied().collect::<VecDeque<_>>()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (log, next) = (Arc::clone(&received), Arc::clone(&queue));
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let (log, next) = (Arc::clone(&log), Arc::clone(&next));
                async move {
                    let headers = headers
                        .iter()
                        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.to_string(), v.to_owned())))
                        .collect();
                    log.lock().expect("log").push(Received { headers, body });
                    let status = next.lock().expect("answers").pop_front().unwrap_or(200);
                    axum::http::StatusCode::from_u16(status).expect("a status")
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/hook"),
            received,
            answers: queue,
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().expect("log").clone()
    }

    /// Answers `status` to every request from now on (until told otherwise).
    pub(crate) fn always(&self, status: u16, times: usize) {
        let mut answers = self.answers.lock().expect("answers");
        answers.clear();
        answers.extend(std::iter::repeat_n(status, times));
    }

    /// Waits for at least `count` requests.
    pub(crate) async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver got {} requests, expected {count}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Publishes events on a world's NATS as their owning services would.
pub(crate) struct Publisher(async_nats::jetstream::Context);

impl Publisher {
    /// Publishes `event` on its subject, with its type and a new id; returns the id.
    pub(crate) async fn publish<M: Name>(&self, resource: &str, event: &M) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        headers.insert("Taskmesh-Event-Type", M::full_name().as_str());
        headers.insert("Taskmesh-Subject", resource);
        self.0
            .publish_with_headers(
                taskmesh_events::subject_of::<M>(),
                headers,
                event.encode_to_vec().into(),
            )
            .await
            .expect("publish")
            .await
            .expect("stored");
        id
    }
}
