//! Harness: the execution app, a scripted HTTP server, and task events on `TASKS`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use prost::Message;
use taskmesh_contracts::execution_v1::execution_service_client::ExecutionServiceClient;
use taskmesh_contracts::execution_v1::{Execution, ExecutionState, ListExecutionsRequest};
use taskmesh_contracts::tasks_v1::{EventContext, Job, TaskCreated};
use taskmesh_events::StreamSpec;
use taskmesh_execution::{App, Config};
use taskmesh_testing::{NatsServer, Stack, TestDatabase};
use tonic::transport::Channel;

/// Calls the HTTP server saw, by path.
#[derive(Clone, Default)]
pub(crate) struct Calls(Arc<Mutex<HashMap<String, Vec<Instant>>>>);

impl Calls {
    pub(crate) fn of(&self, path: &str) -> Vec<Instant> {
        self.0
            .lock()
            .expect("lock")
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// Calls to paths starting with `prefix`.
    pub(crate) fn total_prefix(&self, prefix: &str) -> usize {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter(|(path, _)| path.starts_with(prefix))
            .map(|(_, calls)| calls.len())
            .sum()
    }

    fn record(&self, path: String) -> usize {
        let mut calls = self.0.lock().expect("lock");
        let list = calls.entry(path).or_default();
        list.push(Instant::now());
        list.len()
    }
}

async fn page(State(calls): State<Calls>) -> &'static str {
    calls.record("/page".into());
    "<html><body>Rust is fast. Learn rust today. Nothing else.</body></html>"
}

async fn flaky(State(calls): State<Calls>, Path(id): Path<String>) -> (StatusCode, &'static str) {
    let n = calls.record(format!("/flaky/{id}"));
    if n <= 2 {
        (StatusCode::INTERNAL_SERVER_ERROR, "not yet")
    } else {
        (StatusCode::OK, "finally")
    }
}

async fn broken(State(calls): State<Calls>) -> (StatusCode, &'static str) {
    calls.record("/broken".into());
    (StatusCode::INTERNAL_SERVER_ERROR, "always broken")
}

async fn pause(State(calls): State<Calls>, Path(id): Path<String>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(300)).await;
    calls.record(format!("/pause/{id}"));
    "done"
}

/// Records `/held:end` when dropped: when the response is sent or the client went away.
struct HeldEnd(Calls);

impl Drop for HeldEnd {
    fn drop(&mut self) {
        self.0.record("/held:end".into());
    }
}

/// Answers after 6 s, recording when each request ends, answered or abandoned.
async fn held(State(calls): State<Calls>) -> &'static str {
    calls.record("/held".into());
    let _end = HeldEnd(calls);
    tokio::time::sleep(Duration::from_secs(6)).await;
    "done"
}

async fn slow(State(calls): State<Calls>) -> &'static str {
    calls.record("/slow".into());
    tokio::time::sleep(Duration::from_secs(20)).await;
    "too late"
}

/// Starts the scripted HTTP server.
pub(crate) async fn http_server() -> (SocketAddr, Calls) {
    let calls = Calls::default();
    let app = Router::new()
        .route("/page", get(page))
        .route("/flaky/{id}", get(flaky))
        .route("/broken", get(broken))
        .route("/slow", get(slow))
        .route("/held", get(held))
        .route("/pause/{id}", get(pause))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, calls)
}

/// The user who owns the test project.
pub(crate) const OWNER: &str = "owner";

/// Adds the owner as the caller of every request.
pub(crate) fn as_owner(
    mut request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", taskmesh_testing::identity::token(OWNER))
            .parse()
            .expect("ascii"),
    );
    Ok(request)
}

type OwnerClient = ExecutionServiceClient<
    tonic::service::interceptor::InterceptedService<
        Channel,
        fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>,
    >,
>;

/// The projects service the execution service asks about membership, and a project in it.
async fn projects(
    stack: &Stack,
    nats: &NatsServer,
) -> (SocketAddr, String, tokio::sync::oneshot::Sender<()>) {
    let db = TestDatabase::create(stack, "execution_test_projects").await;
    let layers = taskmesh_testing::with_identity(db.app_layers(
        taskmesh_projects::Config::default_layers(),
        stack,
        &nats.url(),
    ));
    let app = taskmesh_projects::App::build(
        taskmesh_projects::Config::from_layers(&layers).expect("config"),
    )
    .await
    .expect("projects");
    let addr = app.grpc_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let mut client =
        taskmesh_contracts::projects_v1::project_service_client::ProjectServiceClient::connect(
            format!("http://{addr}"),
        )
        .await
        .expect("connect projects");
    let mut request = tonic::Request::new(taskmesh_contracts::projects_v1::CreateProjectRequest {
        project: Some(taskmesh_contracts::projects_v1::Project {
            display_name: "Jobs".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", taskmesh_testing::identity::token(OWNER))
            .parse()
            .expect("ascii"),
    );
    let project = client
        .create_project(request)
        .await
        .expect("project")
        .into_inner()
        .name;
    (addr, project, stop)
}

/// A running execution service on a private NATS.
pub(crate) struct World {
    pub(crate) nats: NatsServer,
    pub(crate) project: String,
    pub(crate) stack: Stack,
    /// The service's database.
    pub(crate) db: TestDatabase,
    _projects: tokio::sync::oneshot::Sender<()>,
    pub(crate) channel: Channel,
    pub(crate) http: SocketAddr,
    pub(crate) calls: Calls,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl World {
    pub(crate) async fn new() -> Self {
        Self::with(|l| l).await
    }

    /// Like [`new`](Self::new), with `customize` applied to the service's settings last.
    pub(crate) async fn with(
        customize: impl FnOnce(taskmesh_mesh::ConfigLayers) -> taskmesh_mesh::ConfigLayers,
    ) -> Self {
        let stack = Stack::load();
        let nats = NatsServer::start(&stack).await;
        let (projects_addr, project, projects_stop) = projects(&stack, &nats).await;
        let db = TestDatabase::create(&stack, "execution_test").await;
        let layers = taskmesh_testing::with_identity(db.app_layers(
            Config::default_layers(),
            &stack,
            &nats.url(),
        ))
        .set("projects.endpoint", format!("http://{projects_addr}"))
        .set("workers.lease_ms", 1500)
        .set("workers.poll_ms", 50)
        // The scripted job servers listen on the loopback address.
        .set("egress.allow_networks", vec!["127.0.0.1/32"])
        .set("shutdown.grace_period_ms", 1000);
        let layers = customize(layers);
        let app = App::build(Config::from_layers(&layers).expect("config"))
            .await
            .expect("app");
        let addr = app.grpc_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run(async {
            let _ = stopped.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let (http, calls) = http_server().await;
        Self {
            nats,
            stack,
            db,
            project,
            _projects: projects_stop,
            channel,
            http,
            calls,
            _stop: stop,
        }
    }

    /// A client calling as the project's owner.
    pub(crate) fn client(&self) -> OwnerClient {
        ExecutionServiceClient::with_interceptor(self.channel.clone(), as_owner as fn(_) -> _)
    }

    /// A client calling as nobody the project knows.
    pub(crate) fn stranger(&self) -> ExecutionServiceClient<taskmesh_testing::Authed> {
        ExecutionServiceClient::with_interceptor(
            self.channel.clone(),
            taskmesh_testing::DefaultCaller("stranger"),
        )
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Publishes a TaskCreated carrying `job`, as the tasks service does; returns the task name.
    pub(crate) async fn create_task_with(&self, job: Job) -> String {
        let task = format!("{}/tasks/{}", self.project, uuid::Uuid::now_v7().simple());
        self.publish_created(&task, 1, job, &uuid::Uuid::now_v7().to_string())
            .await;
        task
    }

    pub(crate) async fn publish_created(&self, task: &str, version: i64, job: Job, event_id: &str) {
        Publisher::new(&self.nats)
            .await
            .publish(task, version, job, event_id)
            .await;
    }

    /// The dead letters, once there are any (up to 15 s; empty if none came).
    pub(crate) async fn dead_letters(&self) -> Vec<taskmesh_events::dead_letters::DeadLetter> {
        let js = jetstream::new(async_nats::connect(self.nats.url()).await.expect("nats"));
        for _ in 0..150 {
            let letters = taskmesh_events::dead_letters::list(&js, 10)
                .await
                .unwrap_or_default();
            if !letters.is_empty() {
                return letters;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Vec::new()
    }

    /// Waits for the task's execution to exist, then for `done` to hold (up to 30 s).
    pub(crate) async fn execution_until(
        &self,
        task: &str,
        done: impl Fn(&Execution) -> bool,
    ) -> Execution {
        let mut last = None;
        for _ in 0..600 {
            let listed = self
                .client()
                .list_executions(ListExecutionsRequest {
                    parent: task.to_owned(),
                    ..Default::default()
                })
                .await
                .expect("list")
                .into_inner()
                .executions;
            if let Some(execution) = listed.into_iter().next() {
                if done(&execution) {
                    return execution;
                }
                last = Some(execution);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out; last seen: {last:?}");
    }
}

/// Publishes task events on `TASKS`, as the tasks service does.
pub(crate) struct Publisher {
    js: jetstream::Context,
}

impl Publisher {
    pub(crate) async fn new(nats: &NatsServer) -> Self {
        let client = async_nats::connect(nats.url()).await.expect("nats");
        let js = jetstream::new(client);
        // The app may have created the stream first, with its own duplicate window.
        if StreamSpec::for_context("tasks", 1, Duration::from_secs(60))
            .ensure(&js)
            .await
            .is_err()
        {
            js.get_stream("TASKS").await.expect("stream");
        }
        Self { js }
    }

    /// A TaskCreated at version 1 carrying `job`.
    pub(crate) async fn created(&self, task: &str, job: Job) {
        self.publish(task, 1, job, &uuid::Uuid::now_v7().to_string())
            .await;
    }

    pub(crate) async fn publish(&self, task: &str, version: i64, job: Job, event_id: &str) {
        let js = &self.js;
        let event = TaskCreated {
            context: Some(EventContext {
                task: task.to_owned(),
                version,
                actor: "users/ada".into(),
                time: None,
            }),
            title: "job".into(),
            job: Some(job),
            ..Default::default()
        };
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event_id);
        headers.insert("Taskmesh-Event-Type", "taskmesh.tasks.v1.TaskCreated");
        headers.insert("Taskmesh-Subject", task);
        headers.insert(
            "Taskmesh-Correlation-Id",
            format!("corr-{event_id}").as_str(),
        );
        js.send_publish(
            "taskmesh.tasks.v1.task_created",
            PublishMessage::build()
                .payload(event.encode_to_vec().into())
                .headers(headers),
        )
        .await
        .expect("publish")
        .await
        .expect("ack");
    }
}

/// The headers of the terminal event of `execution` on the EXECUTION stream.
pub(crate) async fn terminal_event_headers(
    nats: &NatsServer,
    execution: &str,
) -> Option<HeaderMap> {
    use async_nats::jetstream::consumer;
    use futures::StreamExt;
    let js = jetstream::new(async_nats::connect(nats.url()).await.expect("nats"));
    let stream = js.get_stream("EXECUTION").await.ok()?;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            filter_subject: "taskmesh.execution.v1.execution_completed".into(),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut batch = consumer
        .fetch()
        .max_messages(100)
        .expires(Duration::from_millis(500))
        .messages()
        .await
        .expect("fetch");
    while let Some(message) = batch.next().await {
        let headers = message
            .expect("message")
            .headers
            .clone()
            .unwrap_or_default();
        if headers
            .get("Taskmesh-Subject")
            .is_some_and(|v| v.as_str() == execution)
        {
            return Some(headers);
        }
    }
    None
}

/// True when the execution reached a final state.
pub(crate) fn is_final(execution: &Execution) -> bool {
    matches!(
        execution.state(),
        ExecutionState::Succeeded | ExecutionState::Failed | ExecutionState::Cancelled
    )
}
