//! The platform under load, as `make up` runs it: a user signed up through the gateway, a project
//! with a board of seeded tasks, and the calls of every scenario over the four ways in.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use serde_json::{Value, json};
use taskmesh_contracts::projects_v1::board_service_client::BoardServiceClient;
use taskmesh_contracts::projects_v1::project_service_client::ProjectServiceClient;
use taskmesh_contracts::projects_v1::{GetProjectRequest, ListColumnsRequest};
use taskmesh_contracts::tasks_v1::task_service_client::TaskServiceClient;
use taskmesh_contracts::tasks_v1::{
    CreateTaskRequest, GetTaskRequest, ListTasksRequest, MoveTaskRequest, Task, UpdateTaskRequest,
};
use tonic::transport::Channel;

/// Seeding creates in flight at once.
const SEED_CONCURRENCY: usize = 16;

/// Where the platform listens.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The projects service's own gRPC port.
    pub projects: String,
    /// The tasks service's own gRPC port.
    pub tasks: String,
    /// The gateway's native gRPC port.
    pub gateway_grpc: String,
    /// The gateway's REST and grpc-web base URL.
    pub gateway_http: String,
}

/// A way into the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// gRPC straight to the service.
    Direct,
    /// gRPC through the gateway's native port.
    Gateway,
    /// REST/JSON through the gateway.
    Rest,
    /// grpc-web (binary) through the gateway.
    GrpcWeb,
}

/// What to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// `GetProject`: token check, membership, read.
    GetProject,
    /// `GetTask` of one of the seeded tasks.
    GetTask,
    /// `ListTasks`, a page of 50 with a label filter.
    ListTasks,
    /// `CreateTask` on one board.
    CreateTask,
    /// `UpdateTask` of a title.
    UpdateTask,
    /// `MoveTask` between two columns.
    MoveTask,
    /// A board's day: 60 % `GetTask`, 20 % `ListTasks`, 10 % `UpdateTask`, 10 % `CreateTask`.
    Mixed,
}

impl Scenario {
    /// Every scenario, in the order a run takes them.
    pub const ALL: [Self; 7] = [
        Self::GetProject,
        Self::GetTask,
        Self::ListTasks,
        Self::CreateTask,
        Self::UpdateTask,
        Self::MoveTask,
        Self::Mixed,
    ];

    pub fn call(self, n: u64) -> Call {
        let i = usize::try_from(n).unwrap_or(0);
        match self {
            Self::GetProject => Call::GetProject,
            Self::GetTask => Call::GetTask(i),
            Self::ListTasks => Call::ListTasks,
            Self::CreateTask => Call::CreateTask,
            Self::UpdateTask => Call::UpdateTask(i),
            Self::MoveTask => Call::MoveTask(i),
            Self::Mixed => match n % 10 {
                0..=5 => Call::GetTask(i),
                6 | 7 => Call::ListTasks,
                8 => Call::UpdateTask(i),
                _ => Call::CreateTask,
            },
        }
    }

    /// Writes are measured against the `INSERT` floor, reads against the `SELECT` floor.
    pub fn writes(self) -> bool {
        matches!(self, Self::CreateTask | Self::UpdateTask | Self::MoveTask)
    }
}

impl Transport {
    /// Every way in.
    pub const ALL: [Self; 4] = [Self::Direct, Self::Gateway, Self::Rest, Self::GrpcWeb];
}

/// One call of a scenario.
#[derive(Debug, Clone)]
pub enum Call {
    GetProject,
    GetTask(usize),
    ListTasks,
    CreateTask,
    UpdateTask(usize),
    MoveTask(usize),
}

/// A signed-up user with a project and a board of tasks, and clients on every way in.
#[derive(Clone)]
pub struct Platform {
    token: String,
    /// The project's resource name.
    pub project: String,
    /// The board's columns, in order.
    pub columns: Vec<String>,
    /// The seeded tasks' resource names.
    pub tasks: Arc<[String]>,
    http: reqwest::Client,
    base: String,
    direct: (ProjectServiceClient<Channel>, TaskServiceClient<Channel>),
    gateway: (ProjectServiceClient<Channel>, TaskServiceClient<Channel>),
}

async fn channel(url: &str) -> anyhow::Result<Channel> {
    Channel::from_shared(url.to_owned())?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}; is `make up` running?"))
}

impl Platform {
    /// The `authorization` value of the signed-up user.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// Signs up a fresh user through the gateway, creates a project with a board and `seed` tasks
    /// (half of them labelled `load`).
    pub async fn prepare(endpoints: &Endpoints, seed: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()?;
        let base = endpoints.gateway_http.clone();
        let (_, token) = sign_up(&http, &base).await?;
        let project = created(
            &http,
            &format!("{base}/v1/projects"),
            Some(&token),
            json!({"displayName": "Load"}),
        )
        .await
        .context("creating the project")?;
        let project = project["name"].as_str().context("project name")?.to_owned();
        let board = created(
            &http,
            &format!("{base}/v1/{project}/boards"),
            Some(&token),
            json!({"displayName": "Load"}),
        )
        .await
        .context("creating the board")?;
        let board = board["name"].as_str().context("board name")?.to_owned();

        let direct = (
            ProjectServiceClient::new(channel(&endpoints.projects).await?),
            TaskServiceClient::new(channel(&endpoints.tasks).await?),
        );
        let gateway_channel = channel(&endpoints.gateway_grpc).await?;
        let gateway = (
            ProjectServiceClient::new(gateway_channel.clone()),
            TaskServiceClient::new(gateway_channel),
        );
        let mut platform = Self {
            token,
            project,
            columns: Vec::new(),
            tasks: Arc::from(Vec::new()),
            http,
            base,
            direct,
            gateway,
        };
        let columns = BoardServiceClient::new(channel(&endpoints.projects).await?)
            .list_columns(platform.authed(ListColumnsRequest {
                parent: board,
                page_size: 100,
                ..Default::default()
            }))
            .await
            .context("listing the board's columns")?
            .into_inner();
        platform.columns = columns.columns.into_iter().map(|c| c.name).collect();
        if platform.columns.len() < 2 {
            bail!("the board has fewer than two columns");
        }
        // Many at once, so that a board of 100,000 tasks is ready in minutes.
        let seeded: Vec<String> = futures::stream::iter(0..seed)
            .map(|n| {
                let platform = &platform;
                async move {
                    platform
                        .create(&format!("seed {n}"), n % 2 == 0)
                        .await
                        .map(|task| task.name)
                        .context("seeding a task")
                }
            })
            .buffer_unordered(SEED_CONCURRENCY)
            .try_collect()
            .await?;
        platform.tasks = seeded.into();
        Ok(platform)
    }

    /// Adds `user` (`users/{id}`) to the project as a member.
    pub async fn add_member(&self, user: &str) -> anyhow::Result<()> {
        created(
            &self.http,
            &format!("{}/v1/{}/members", self.base, self.project),
            Some(&self.token),
            json!({"user": user, "role": "ROLE_MEMBER"}),
        )
        .await
        .with_context(|| format!("adding {user} to the project"))?;
        Ok(())
    }

    /// Creates a task assigned to `assignee` directly on the tasks service; returns its name.
    pub async fn create_assigned(&self, title: &str, assignee: &str) -> anyhow::Result<String> {
        let mut task = self.new_task(title, false);
        task.assignee = assignee.to_owned();
        Ok(self
            .direct
            .1
            .clone()
            .create_task(self.authed(CreateTaskRequest {
                parent: self.project.clone(),
                task: Some(task),
                request_id: String::new(),
            }))
            .await?
            .into_inner()
            .name)
    }

    fn authed<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token)
                .parse()
                .expect("ascii token"),
        );
        request
    }

    fn new_task(&self, title: &str, labelled: bool) -> Task {
        Task {
            title: title.to_owned(),
            column: self.columns[0].clone(),
            labels: if labelled {
                vec!["load".to_owned()]
            } else {
                Vec::new()
            },
            ..Default::default()
        }
    }

    async fn create(&self, title: &str, labelled: bool) -> anyhow::Result<Task> {
        Ok(self
            .direct
            .1
            .clone()
            .create_task(self.authed(CreateTaskRequest {
                parent: self.project.clone(),
                task: Some(self.new_task(title, labelled)),
                request_id: String::new(),
            }))
            .await?
            .into_inner())
    }

    /// Makes `call` (the `n`-th of the run) over `transport`.
    pub async fn call(&self, transport: Transport, call: &Call, n: u64) -> Result<(), String> {
        match transport {
            Transport::Direct => self.grpc(&self.direct, call, n).await,
            Transport::Gateway => self.grpc(&self.gateway, call, n).await,
            Transport::Rest => self.rest(call, n).await,
            Transport::GrpcWeb => self.grpc_web(call, n).await,
        }
    }

    fn task(&self, index: usize) -> &str {
        &self.tasks[index % self.tasks.len()]
    }

    fn column(&self, n: u64) -> &str {
        &self.columns[usize::try_from(n).unwrap_or(0) % 2]
    }

    fn list_request(&self) -> ListTasksRequest {
        ListTasksRequest {
            parent: self.project.clone(),
            page_size: 50,
            filter: "labels:\"load\"".to_owned(),
            ..Default::default()
        }
    }

    async fn grpc(
        &self,
        (projects, tasks): &(ProjectServiceClient<Channel>, TaskServiceClient<Channel>),
        call: &Call,
        n: u64,
    ) -> Result<(), String> {
        let (mut projects, mut tasks) = (projects.clone(), tasks.clone());
        let done = match call {
            Call::GetProject => projects
                .get_project(self.authed(GetProjectRequest {
                    name: self.project.clone(),
                }))
                .await
                .map(drop),
            Call::GetTask(i) => tasks
                .get_task(self.authed(GetTaskRequest {
                    name: self.task(*i).to_owned(),
                }))
                .await
                .map(drop),
            Call::ListTasks => tasks
                .list_tasks(self.authed(self.list_request()))
                .await
                .map(drop),
            Call::CreateTask => tasks
                .create_task(self.authed(CreateTaskRequest {
                    parent: self.project.clone(),
                    task: Some(self.new_task(&format!("load {n}"), false)),
                    request_id: String::new(),
                }))
                .await
                .map(drop),
            Call::UpdateTask(i) => tasks
                .update_task(self.authed(UpdateTaskRequest {
                    task: Some(Task {
                        name: self.task(*i).to_owned(),
                        title: format!("updated {n}"),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["title".to_owned()],
                    }),
                }))
                .await
                .map(drop),
            Call::MoveTask(i) => tasks
                .move_task(self.authed(MoveTaskRequest {
                    name: self.task(*i).to_owned(),
                    column: self.column(n).to_owned(),
                    ..Default::default()
                }))
                .await
                .map(drop),
        };
        done.map_err(|status| format!("{:?}: {}", status.code(), status.message()))
    }

    async fn rest(&self, call: &Call, n: u64) -> Result<(), String> {
        let base = &self.base;
        let request = match call {
            Call::GetProject => self.http.get(format!("{base}/v1/{}", self.project)),
            Call::GetTask(i) => self.http.get(format!("{base}/v1/{}", self.task(*i))),
            Call::ListTasks => self.http.get(format!(
                "{base}/v1/{}/tasks?pageSize=50&filter=labels%3A%22load%22",
                self.project
            )),
            Call::CreateTask => self
                .http
                .post(format!("{base}/v1/{}/tasks", self.project))
                .json(&json!({"title": format!("load {n}"), "column": self.columns[0]})),
            Call::UpdateTask(i) => self
                .http
                .patch(format!("{base}/v1/{}?updateMask=title", self.task(*i)))
                .json(&json!({"title": format!("updated {n}")})),
            Call::MoveTask(i) => self
                .http
                .post(format!("{base}/v1/{}:move", self.task(*i)))
                .json(&json!({"column": self.column(n)})),
        };
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)))
        }
    }

    async fn grpc_web(&self, call: &Call, n: u64) -> Result<(), String> {
        let (path, message) = match call {
            Call::GetProject => (
                "taskmesh.projects.v1.ProjectService/GetProject",
                GetProjectRequest {
                    name: self.project.clone(),
                }
                .encode_to_vec(),
            ),
            Call::GetTask(i) => (
                "taskmesh.tasks.v1.TaskService/GetTask",
                GetTaskRequest {
                    name: self.task(*i).to_owned(),
                }
                .encode_to_vec(),
            ),
            Call::ListTasks => (
                "taskmesh.tasks.v1.TaskService/ListTasks",
                self.list_request().encode_to_vec(),
            ),
            Call::CreateTask => (
                "taskmesh.tasks.v1.TaskService/CreateTask",
                CreateTaskRequest {
                    parent: self.project.clone(),
                    task: Some(self.new_task(&format!("load {n}"), false)),
                    request_id: String::new(),
                }
                .encode_to_vec(),
            ),
            Call::UpdateTask(i) => (
                "taskmesh.tasks.v1.TaskService/UpdateTask",
                UpdateTaskRequest {
                    task: Some(Task {
                        name: self.task(*i).to_owned(),
                        title: format!("updated {n}"),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["title".to_owned()],
                    }),
                }
                .encode_to_vec(),
            ),
            Call::MoveTask(i) => (
                "taskmesh.tasks.v1.TaskService/MoveTask",
                MoveTaskRequest {
                    name: self.task(*i).to_owned(),
                    column: self.column(n).to_owned(),
                    ..Default::default()
                }
                .encode_to_vec(),
            ),
        };
        let mut body = BytesMut::with_capacity(5 + message.len());
        body.put_u8(0);
        body.put_u32(u32::try_from(message.len()).map_err(|e| e.to_string())?);
        body.put_slice(&message);
        let response = self
            .http
            .post(format!("{}/{path}", self.base))
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .bearer_auth(&self.token)
            .body(body.freeze())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if let Some(status) = response.headers().get("grpc-status").filter(|s| *s != "0") {
            return Err(format!("grpc-status {status:?}"));
        }
        let http_status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if !http_status.is_success() {
            return Err(format!("HTTP {http_status}"));
        }
        grpc_web_status(body)
    }
}

/// The `grpc-status` of a grpc-web body's trailer frame (0 is success; no trailer frame means the
/// status came in the headers).
fn grpc_web_status(mut body: Bytes) -> Result<(), String> {
    while body.remaining() >= 5 {
        let flags = body.get_u8();
        let len = body.get_u32() as usize;
        if body.remaining() < len {
            return Err("a truncated grpc-web frame".to_owned());
        }
        let frame = body.split_to(len);
        if flags & 0x80 != 0 {
            let trailers = String::from_utf8_lossy(&frame);
            return match trailers
                .lines()
                .find_map(|l| l.strip_prefix("grpc-status:"))
                .map(str::trim)
            {
                Some("0") | None => Ok(()),
                Some(code) => Err(format!("grpc-status {code}: {trailers}")),
            };
        }
    }
    Ok(())
}

/// `post`, which must answer 200: its body.
/// Registers a fresh user through the gateway at `base`, waits for the registration saga and
/// signs in; returns the user's name (`users/{id}`) and access token.
pub async fn sign_up(http: &reqwest::Client, base: &str) -> anyhow::Result<(String, String)> {
    let user = format!("load{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let email = format!("{user}@example.org");
    let password = "load test password";
    created(
        http,
        &format!("{base}/v1/users:register"),
        None,
        json!({"username": user, "email": email, "password": password}),
    )
    .await
    .with_context(|| format!("registering {user}"))?;
    for _ in 0..100 {
        let (status, body) = post(
            http,
            &format!("{base}/v1/sessions:login"),
            None,
            json!({"email": email, "password": password}),
        )
        .await?;
        if status == 200
            && let Some(token) = body["accessToken"].as_str()
        {
            return Ok((format!("users/{user}"), token.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the registration of {user} never completed")
}

async fn created(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let (status, body) = post(http, url, token, body).await?;
    if status != 200 {
        bail!("answered {status}: {body}");
    }
    Ok(body)
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let mut request = http.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}; is `make up` running?"))?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}
