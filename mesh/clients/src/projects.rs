//! The gRPC client of the projects service that other services use: who is a member with which
//! role (and so who may read or write a project's data), and which board columns exist. Calls carry
//! the caller's request id, correlation id, trace context and deadline.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskmesh_contracts::projects_v1::board_service_client::BoardServiceClient;
use taskmesh_contracts::projects_v1::member_service_client::MemberServiceClient;
use taskmesh_contracts::projects_v1::{
    Column, ColumnKind, GetColumnRequest, GetMemberRequest, ListColumnsRequest, Role,
};

use taskmesh_mesh::context::CallContext;
use taskmesh_mesh::status::{unavailable, with_reason};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::project_cache::ProjectCache;

/// Where the projects service is (the `projects` table of a service's configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ProjectsEndpoint {
    /// gRPC endpoint, `http://127.0.0.1:50052`.
    pub endpoint: String,
    /// Longest wait for one call, in milliseconds.
    pub timeout_ms: u64,
    /// How long a member's role or a column is remembered at most, in milliseconds
    /// ([`ProjectCache`]); the projects service's events forget it sooner when it changes. 0 asks
    /// on every call.
    pub cache_ms: u64,
}

impl Default for ProjectsEndpoint {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:50052".to_owned(),
            timeout_ms: 2_000,
            cache_ms: 30_000,
        }
    }
}

impl ProjectsEndpoint {
    /// The timeout as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The cache's time to live; `None` when it is off.
    pub fn cache_ttl(&self) -> Option<Duration> {
        (self.cache_ms > 0).then(|| Duration::from_millis(self.cache_ms))
    }

    /// Checks the endpoint; the error names the key.
    pub fn validate(&self) -> Result<(), taskmesh_mesh::config::ConfigError> {
        if self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://") {
            Ok(())
        } else {
            Err(taskmesh_mesh::config::ConfigError::Invalid {
                key: "projects.endpoint".to_owned(),
                message: format!("`{}` is not an http(s) URL", self.endpoint),
            })
        }
    }
}

/// Whether a call reads or changes a project's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any member, viewers included.
    Read,
    /// Members, admins and owners.
    Write,
}

/// Client of `taskmesh.projects.v1`.
#[derive(Debug, Clone)]
pub struct ProjectsClient {
    channel: Channel,
    timeout: Duration,
    cache: Option<ProjectCache>,
}

/// The endpoint could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: key `projects.endpoint`: {0}")]
pub struct EndpointError(String);

impl ProjectsClient {
    /// A lazily connecting client for the configured endpoint.
    pub fn from_config(config: &ProjectsEndpoint) -> Result<Self, EndpointError> {
        Self::new(&config.endpoint, config.timeout())
    }

    /// A lazily connecting client; each call waits at most `timeout` (or the caller's deadline).
    pub fn new(endpoint: &str, timeout: Duration) -> Result<Self, EndpointError> {
        let channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| EndpointError(e.to_string()))?
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy();
        Ok(Self {
            channel,
            timeout,
            cache: None,
        })
    }

    /// Answers role and column questions from `cache` when it can (the caller runs its
    /// [`watch`](ProjectCache::watch)).
    pub fn with_cache(mut self, cache: ProjectCache) -> Self {
        self.cache = Some(cache);
        self
    }

    fn request<T>(&self, context: &CallContext, message: T) -> Request<T> {
        crate::forwarded(context, self.timeout, message)
    }

    /// PERMISSION_DENIED unless the caller may `access` the project. Call it before any lookup, so
    /// that data of a foreign project and missing data look alike.
    pub async fn authorize(
        &self,
        context: &CallContext,
        project: &str,
        access: Access,
    ) -> Result<Role, Status> {
        match (self.role(context, project).await?, access) {
            (None, _) => Err(Status::permission_denied(format!(
                "{} is not a member of projects/{project}",
                context.caller
            ))),
            (Some(Role::Viewer), Access::Write) => Err(Status::permission_denied(format!(
                "{} may only read projects/{project}",
                context.caller
            ))),
            (Some(role), _) => Ok(role),
        }
    }

    /// The caller's role in `projects/{project}`, or `None` when not a member (or no such project).
    pub async fn role(&self, context: &CallContext, project: &str) -> Result<Option<Role>, Status> {
        let user = context.caller.trim_start_matches("users/");
        let Some(cache) = &self.cache else {
            return self.fetch_role(context, project, user).await;
        };
        match cache.role(project, user) {
            Ok(role) => Ok(role),
            Err(ticket) => {
                let role = self.fetch_role(context, project, user).await?;
                cache.remember_role(ticket, project, user, role);
                Ok(role)
            }
        }
    }

    async fn fetch_role(
        &self,
        context: &CallContext,
        project: &str,
        user: &str,
    ) -> Result<Option<Role>, Status> {
        let request = self.request(
            context,
            GetMemberRequest {
                name: format!("projects/{project}/members/{user}"),
            },
        );
        match MemberServiceClient::new(self.channel.clone())
            .get_member(request)
            .await
        {
            Ok(member) => Ok(Role::try_from(member.into_inner().role).ok()),
            // Projects refuses non-members before it looks anything up.
            Err(status)
                if matches!(
                    status.code(),
                    Code::NotFound | Code::InvalidArgument | Code::PermissionDenied
                ) =>
            {
                Ok(None)
            }
            Err(status) => Err(upstream(&status)),
        }
    }

    /// The column, or FAILED_PRECONDITION `COLUMN_NOT_FOUND` when the board has no such column.
    pub async fn column(&self, context: &CallContext, column: &str) -> Result<Column, Status> {
        let project = column
            .strip_prefix("projects/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        let Some(cache) = self.cache.as_ref().filter(|_| !project.is_empty()) else {
            return self.fetch_column(context, column).await;
        };
        match cache.column(project, column) {
            Ok(found) => Ok(found),
            Err(ticket) => {
                let found = self.fetch_column(context, column).await?;
                cache.remember_column(ticket, project, &found);
                Ok(found)
            }
        }
    }

    async fn fetch_column(&self, context: &CallContext, column: &str) -> Result<Column, Status> {
        let request = self.request(
            context,
            GetColumnRequest {
                name: column.to_owned(),
            },
        );
        match BoardServiceClient::new(self.channel.clone())
            .get_column(request)
            .await
        {
            Ok(found) => Ok(found.into_inner()),
            Err(status) if status.code() == Code::NotFound => Err(with_reason(
                Code::FailedPrecondition,
                format!("{column} does not exist on its board"),
                "COLUMN_NOT_FOUND",
                std::collections::HashMap::from([("column".to_owned(), column.to_owned())]),
            )),
            Err(status) => Err(upstream(&status)),
        }
    }

    /// The first column of `board` (in board order) whose kind is the first of `kinds` present.
    pub async fn first_column(
        &self,
        context: &CallContext,
        board: &str,
        kinds: &[ColumnKind],
    ) -> Result<Option<Column>, Status> {
        let request = self.request(
            context,
            ListColumnsRequest {
                parent: board.to_owned(),
                page_size: 100,
                ..Default::default()
            },
        );
        let columns = match BoardServiceClient::new(self.channel.clone())
            .list_columns(request)
            .await
        {
            Ok(list) => list.into_inner().columns,
            Err(status) if status.code() == Code::NotFound => Vec::new(),
            Err(status) => return Err(upstream(&status)),
        };
        Ok(kinds
            .iter()
            .find_map(|kind| columns.iter().find(|c| c.kind == *kind as i32).cloned()))
    }
}

/// The status of a task in a column of `kind` (a `ColumnKind` number): the column's kind decides
/// it, for the tasks service and for the scheduler's task templates alike.
pub fn task_status(kind: i32) -> taskmesh_contracts::tasks_v1::Status {
    use taskmesh_contracts::projects_v1::ColumnKind;
    use taskmesh_contracts::tasks_v1::Status as TaskStatus;

    match ColumnKind::try_from(kind) {
        Ok(ColumnKind::Backlog) => TaskStatus::Backlog,
        Ok(ColumnKind::Todo) => TaskStatus::Todo,
        Ok(ColumnKind::Doing) => TaskStatus::Doing,
        Ok(ColumnKind::Done) => TaskStatus::Done,
        Ok(ColumnKind::Custom) => TaskStatus::Custom,
        _ => TaskStatus::Unspecified,
    }
}

fn upstream(status: &Status) -> Status {
    tracing::warn!(code = ?status.code(), message = status.message(), "projects call failed");
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            unavailable("the projects service")
        }
        _ => Status::internal("internal error"),
    }
}
