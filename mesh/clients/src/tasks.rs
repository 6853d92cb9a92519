//! Client of `taskmesh.tasks.v1` for services that refer to tasks: whether the caller can read a
//! task, asked of the tasks service with the caller's own credential (so its rules decide).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskmesh_contracts::tasks_v1::GetTaskRequest;
use taskmesh_contracts::tasks_v1::task_service_client::TaskServiceClient;
use taskmesh_mesh::context::CallContext;
use taskmesh_mesh::status::unavailable;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// Where the tasks service is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TasksEndpoint {
    /// `http://host:port`.
    pub endpoint: String,
    /// How long one call may take, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for TasksEndpoint {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:50053".to_owned(),
            timeout_ms: 2000,
        }
    }
}

impl TasksEndpoint {
    /// Checks the endpoint; the error names the key.
    pub fn validate(&self) -> Result<(), taskmesh_mesh::config::ConfigError> {
        if self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://") {
            Ok(())
        } else {
            Err(taskmesh_mesh::config::ConfigError::Invalid {
                key: "tasks.endpoint".to_owned(),
                message: format!("`{}` is not an http(s) URL", self.endpoint),
            })
        }
    }
}

/// The endpoint could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: key `tasks.endpoint`: {0}")]
pub struct TasksEndpointError(String);

/// Client of the tasks service.
#[derive(Debug, Clone)]
pub struct TasksClient {
    channel: Channel,
    timeout: Duration,
}

impl TasksClient {
    /// A lazily connecting client for the configured endpoint.
    pub fn from_config(config: &TasksEndpoint) -> Result<Self, TasksEndpointError> {
        let channel = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|e| TasksEndpointError(e.to_string()))?
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy();
        Ok(Self {
            channel,
            timeout: Duration::from_millis(config.timeout_ms.max(1)),
        })
    }

    /// Whether the caller can read `projects/{project}/tasks/{task}` (false when it does not
    /// exist, is deleted, or is not theirs to read).
    pub async fn readable(&self, context: &CallContext, task: &str) -> Result<bool, Status> {
        let request = crate::forwarded(
            context,
            self.timeout,
            GetTaskRequest {
                name: task.to_owned(),
            },
        );
        match TaskServiceClient::new(self.channel.clone())
            .get_task(request)
            .await
        {
            Ok(task) => Ok(task.into_inner().delete_time.is_none()),
            Err(status)
                if matches!(
                    status.code(),
                    Code::NotFound | Code::InvalidArgument | Code::PermissionDenied
                ) =>
            {
                Ok(false)
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "tasks call failed");
                Err(match status.code() {
                    Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::Cancelled
                    | Code::Unknown => unavailable("the tasks service"),
                    _ => Status::internal("internal error"),
                })
            }
        }
    }
}
