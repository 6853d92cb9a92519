//! Harness: a projects app and a scheduler app wired together on a private NATS server, a project
//! with a board, and the firings read back from the `SCHEDULER` stream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use prost::{Message, Name};
use taskmesh_contracts::projects_v1::board_service_client::BoardServiceClient;
use taskmesh_contracts::projects_v1::project_service_client::ProjectServiceClient;
use taskmesh_contracts::projects_v1::{
    Board, ColumnKind, CreateBoardRequest, CreateProjectRequest, ListColumnsRequest, Project,
};
use taskmesh_contracts::scheduler_v1::schedule_service_client::ScheduleServiceClient;
use taskmesh_contracts::scheduler_v1::{
    Action, CreateScheduleRequest, Notify, Schedule, ScheduleTriggered, Trigger, action,
};
use taskmesh_mesh::ConfigLayers;
use tonic::transport::Channel;

use taskmesh_testing::{Authed, DefaultCaller, channel};
pub(crate) use taskmesh_testing::{NatsServer, Stack, TestDatabase};

/// The owner of the fixture project.
pub(crate) const OWNER: &str = "owner";

/// A running app (the kit's, on this test's runtime).
pub(crate) type Running = taskmesh_testing::RunningApp;

async fn start_scheduler(
    stack: &Stack,
    db: &TestDatabase,
    nats_url: &str,
    projects: SocketAddr,
    customize: fn(ConfigLayers) -> ConfigLayers,
) -> Running {
    let layers = customize(test_settings(
        taskmesh_testing::with_identity(db.app_layers(
            taskmesh_scheduler::Config::default_layers(),
            stack,
            nats_url,
        ))
        .set("projects.endpoint", format!("http://{projects}")),
    ));
    let app = taskmesh_scheduler::App::build(
        taskmesh_scheduler::Config::from_layers(&layers).expect("scheduler config"),
    )
    .await
    .expect("scheduler app");
    Running::start(app)
}

/// The projects and scheduler apps, a project owned by [`OWNER`] with one board.
pub(crate) struct World {
    pub(crate) stack: Stack,
    pub(crate) nats: NatsServer,
    _projects: Running,
    pub(crate) scheduler: Running,
    /// The scheduler's database (replicas share it).
    pub(crate) db: TestDatabase,
    pub(crate) projects_addr: SocketAddr,
    pub(crate) channel: Channel,
    pub(crate) project: String,
    pub(crate) columns: HashMap<ColumnKind, String>,
    customize: fn(ConfigLayers) -> ConfigLayers,
    /// A tasks service, when a test started one.
    tasks: Option<(Running, TestDatabase)>,
}

/// Fast firing for tests: a short poll, and a misfire threshold that a busy test machine does not
/// reach while the scheduler runs (the misfire tests set their own).
fn test_settings(layers: ConfigLayers) -> ConfigLayers {
    layers
        .set("firing.poll_ms", 50)
        .set("firing.misfire_threshold_ms", 5000)
        .set("shutdown.grace_period_ms", 1000)
}

impl World {
    pub(crate) async fn new() -> Self {
        Self::with(|l| l).await
    }

    /// A world whose scheduler settings get `customize` last.
    pub(crate) async fn with(customize: fn(ConfigLayers) -> ConfigLayers) -> Self {
        let stack = Stack::load();
        let nats = NatsServer::start(&stack).await;
        let projects_db = TestDatabase::create(&stack, "scheduler_test_projects").await;
        let layers = taskmesh_testing::with_identity(projects_db.app_layers(
            taskmesh_projects::Config::default_layers(),
            &stack,
            &nats.url(),
        ));
        let app = taskmesh_projects::App::build(
            taskmesh_projects::Config::from_layers(&layers).expect("projects config"),
        )
        .await
        .expect("projects app");
        let projects = Running::start(app);
        let projects_addr = projects.addr;
        let db = TestDatabase::create(&stack, "scheduler_test").await;
        let scheduler = start_scheduler(&stack, &db, &nats.url(), projects_addr, customize).await;
        let mut world = Self {
            channel: channel(scheduler.addr).await,
            scheduler,
            stack,
            nats,
            _projects: projects,
            db,
            projects_addr,
            project: String::new(),
            columns: HashMap::new(),
            customize,
            tasks: None,
        };
        world.fixture_project().await;
        world
    }

    /// Another scheduler process on the same database (a replica, or a restart).
    pub(crate) async fn replica(&self) -> Running {
        start_scheduler(
            &self.stack,
            &self.db,
            &self.nats.url(),
            self.projects_addr,
            self.customize,
        )
        .await
    }

    /// Starts the scheduler again after [`Running::stop`], on a new port; clients follow.
    pub(crate) async fn restart(&mut self) {
        self.scheduler = self.replica().await;
        self.channel = channel(self.scheduler.addr).await;
    }

    async fn fixture_project(&mut self) {
        let projects = channel(self.projects_addr).await;
        self.project =
            ProjectServiceClient::with_interceptor(projects.clone(), DefaultCaller(OWNER))
                .create_project(CreateProjectRequest {
                    project: Some(Project {
                        display_name: "Time".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .expect("project")
                .into_inner()
                .name;
        let board = BoardServiceClient::with_interceptor(projects.clone(), DefaultCaller(OWNER))
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
        self.columns = BoardServiceClient::with_interceptor(projects, DefaultCaller(OWNER))
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

    /// Starts a tasks service on this world's NATS and projects, which turns the firings of task
    /// templates into tasks; returns a channel to it.
    pub(crate) async fn start_tasks(&mut self) -> Channel {
        let db = TestDatabase::create(&self.stack, "scheduler_test_tasks").await;
        let layers = taskmesh_testing::with_identity(db.app_layers(
            taskmesh_tasks::Config::default_layers(),
            &self.stack,
            &self.nats.url(),
        ))
        .set(
            "projects.endpoint",
            format!("http://{}", self.projects_addr),
        );
        let app = taskmesh_tasks::App::build(
            taskmesh_tasks::Config::from_layers(&layers).expect("tasks config"),
        )
        .await
        .expect("tasks app");
        let running = Running::start(app);
        let channel = channel(running.addr).await;
        self.tasks = Some((running, db));
        channel
    }

    /// A client calling as the project's owner.
    pub(crate) fn client(&self) -> ScheduleServiceClient<Authed> {
        ScheduleServiceClient::with_interceptor(self.channel.clone(), DefaultCaller(OWNER))
    }

    /// A client calling as `user`.
    pub(crate) fn client_as(&self, user: &'static str) -> ScheduleServiceClient<Authed> {
        ScheduleServiceClient::with_interceptor(self.channel.clone(), DefaultCaller(user))
    }

    pub(crate) fn column(&self, kind: ColumnKind) -> String {
        self.columns.get(&kind).cloned().expect("default column")
    }

    /// Creates a schedule that only notifies, with `trigger`.
    pub(crate) async fn notify_schedule(&self, trigger: Trigger) -> Schedule {
        self.create(trigger, notify(), |s| s).await
    }

    /// Creates a schedule with `trigger` and `action`, `edit` applied to it first.
    pub(crate) async fn create(
        &self,
        trigger: Trigger,
        action: Action,
        edit: impl FnOnce(Schedule) -> Schedule,
    ) -> Schedule {
        self.client()
            .create_schedule(CreateScheduleRequest {
                parent: self.project.clone(),
                schedule: Some(edit(Schedule {
                    display_name: "every so often".into(),
                    trigger: Some(trigger),
                    action: Some(action),
                    ..Default::default()
                })),
                request_id: String::new(),
            })
            .await
            .expect("create schedule")
            .into_inner()
    }

    /// Every `ScheduleTriggered` on the stream so far, in stream order.
    pub(crate) async fn triggered(&self) -> Vec<ScheduleTriggered> {
        self.published().await
    }

    /// Every event of type `M` the scheduler published so far, in stream order.
    pub(crate) async fn published<M: Message + Name + Default>(&self) -> Vec<M> {
        let client = async_nats::connect(self.nats.url()).await.expect("nats");
        let js = jetstream::new(client);
        let Ok(stream) = js.get_stream("SCHEDULER").await else {
            return Vec::new();
        };
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                ack_policy: consumer::AckPolicy::None,
                filter_subject: taskmesh_events::subject_of::<M>(),
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut events = Vec::new();
        loop {
            let mut batch = consumer
                .fetch()
                .max_messages(1000)
                .expires(Duration::from_millis(300))
                .messages()
                .await
                .expect("fetch");
            let mut got = 0;
            while let Some(Ok(message)) = batch.next().await {
                got += 1;
                events.push(M::decode(message.payload.as_ref()).expect("decode"));
            }
            if got == 0 {
                return events;
            }
        }
    }

    /// The occurrence times fired for `schedule`, waiting until there are at least `count`
    /// (at most `within`).
    pub(crate) async fn fired(
        &self,
        schedule: &str,
        count: usize,
        within: Duration,
    ) -> Vec<DateTime<Utc>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let times = occurrences(&self.triggered().await, schedule);
            if times.len() >= count || tokio::time::Instant::now() > deadline {
                return times;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The occurrence times of `schedule` among `events`.
pub(crate) fn occurrences(events: &[ScheduleTriggered], schedule: &str) -> Vec<DateTime<Utc>> {
    events
        .iter()
        .filter(|e| e.schedule == schedule)
        .filter_map(|e| taskmesh_mesh::time::from_timestamp(e.occurrence_time))
        .collect()
}

/// An action that only publishes ScheduleTriggered.
pub(crate) fn notify() -> Action {
    Action {
        kind: Some(action::Kind::Notify(Notify {
            attributes: HashMap::from([("purpose".to_owned(), "test".to_owned())]),
        })),
    }
}

/// `time` as a protobuf timestamp.
pub(crate) fn ts(time: DateTime<Utc>) -> prost_types::Timestamp {
    taskmesh_mesh::time::to_timestamp(time)
}

/// `seconds` as a protobuf duration.
pub(crate) fn secs(seconds: i64) -> prost_types::Duration {
    prost_types::Duration { seconds, nanos: 0 }
}

/// Now, rounded up to the next whole second plus `ahead` seconds.
pub(crate) fn whole_seconds_from_now(ahead: i64) -> DateTime<Utc> {
    let now = Utc::now().timestamp();
    DateTime::from_timestamp(now + 1 + ahead, 0).expect("time")
}
