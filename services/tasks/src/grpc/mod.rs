//! gRPC handlers: parse names, delegate to [`Tasks`], shape responses.

pub mod children;
pub mod commands;
pub mod service;

use taskmesh_contracts::tasks_v1::task_admin_service_server::TaskAdminService;
use taskmesh_contracts::tasks_v1::task_service_server::TaskService;
use taskmesh_contracts::tasks_v1::{
    AddCommentRequest, Comment, CompleteTaskRequest, CreateTaskRequest, DeleteCommentRequest,
    DeleteTaskRequest, GetTaskRequest, ListCommentsRequest, ListCommentsResponse,
    ListTaskActivityRequest, ListTaskActivityResponse, ListTasksRequest, ListTasksResponse,
    ListWorkLogsRequest, ListWorkLogsResponse, LogWorkRequest, MoveTaskRequest,
    RebuildReadModelRequest, RebuildReadModelResponse, ReopenTaskRequest, Task,
    UndeleteTaskRequest, UpdateCommentRequest, UpdateTaskRequest, WorkLog,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip;
use tonic::{Request, Response, Status};

use crate::domain::names::{ChildName, TaskName, parse_project};
use crate::domain::secrets;
use crate::grpc::service::{Access, Tasks};
use crate::store::read_model::{self, TaskQuery};

use taskmesh_mesh::status::required;

/// A task as the caller sees it: the secrets of its job redacted.
fn shown(task: Task) -> Response<Task> {
    Response::new(secrets::shown(task))
}

/// Handles `taskmesh.tasks.v1.TaskService`.
#[derive(Debug, Clone)]
pub struct TasksService {
    tasks: Tasks,
}

impl TasksService {
    /// Handlers over `tasks`.
    pub fn new(tasks: Tasks) -> Self {
        Self { tasks }
    }
}

#[tonic::async_trait]
impl TaskService for TasksService {
    async fn create_task(
        &self,
        request: Request<CreateTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let project = parse_project("parent", &request.parent)?;
        // Permission before anything else: a foreign project and a bad request look alike.
        self.tasks
            .authorize(&context, &project, Access::Write)
            .await?;
        let task = request.task.ok_or_else(|| required("task"))?;
        self.tasks
            .create_task(&context, &project, task, &request.request_id)
            .await
            .map(shown)
    }

    async fn get_task(&self, request: Request<GetTaskRequest>) -> Result<Response<Task>, Status> {
        let context = CallContext::of(&request);
        let name = TaskName::parse("name", &request.get_ref().name)?;
        self.tasks.get_task(&context, &name).await.map(shown)
    }

    async fn list_tasks(
        &self,
        request: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let project = parse_project("parent", &request.parent)?;
        self.tasks
            .authorize(&context, &project, Access::Read)
            .await?;
        let fingerprint = [
            project.as_str(),
            &request.filter,
            &request.order_by,
            if request.show_deleted { "1" } else { "0" },
        ]
        .join("\u{1f}");
        let query = TaskQuery {
            project: &project,
            filter: aip::parse_filter(&request.filter, read_model::FILTER_FIELDS)?,
            order: aip::order_by(
                &request.order_by,
                read_model::ORDER_FIELDS,
                "create_time",
                "task_id",
            )?,
            show_deleted: request.show_deleted,
            page: aip::page(request.page_size, &request.page_token, &fingerprint)?,
            fingerprint,
        };
        let (mut tasks, next_page_token) =
            read_model::list_tasks(self.tasks.events.pool(), query).await?;
        crate::events::job_status::merge(self.tasks.events.pool(), &mut tasks).await?;
        Ok(Response::new(ListTasksResponse {
            tasks: tasks.into_iter().map(secrets::shown).collect(),
            next_page_token,
        }))
    }

    async fn update_task(
        &self,
        request: Request<UpdateTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let task = request.task.ok_or_else(|| required("task"))?;
        let name = TaskName::parse("task.name", &task.name)?;
        self.tasks
            .authorize(&context, &name.project, Access::Write)
            .await?;
        self.tasks
            .update_task(&context, task, request.update_mask.as_ref())
            .await
            .map(shown)
    }

    async fn delete_task(
        &self,
        request: Request<DeleteTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        let context = CallContext::of(&request);
        let name = TaskName::parse("name", &request.get_ref().name)?;
        self.tasks
            .delete(&context, &name, &request.get_ref().etag)
            .await
            .map(shown)
    }

    async fn undelete_task(
        &self,
        request: Request<UndeleteTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        let context = CallContext::of(&request);
        let name = TaskName::parse("name", &request.get_ref().name)?;
        self.tasks
            .undelete(&context, &name, &request.get_ref().etag)
            .await
            .map(shown)
    }

    async fn move_task(&self, request: Request<MoveTaskRequest>) -> Result<Response<Task>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let name = TaskName::parse("name", &request.name)?;
        self.tasks
            .authorize(&context, &name.project, Access::Write)
            .await?;
        self.tasks
            .move_task(
                &context,
                &name,
                &request.column,
                request.position,
                &request.etag,
            )
            .await
            .map(shown)
    }

    async fn complete_task(
        &self,
        request: Request<CompleteTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        let context = CallContext::of(&request);
        let name = TaskName::parse("name", &request.get_ref().name)?;
        self.tasks
            .complete_task(&context, &name, &request.get_ref().etag)
            .await
            .map(shown)
    }

    async fn reopen_task(
        &self,
        request: Request<ReopenTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        let context = CallContext::of(&request);
        let name = TaskName::parse("name", &request.get_ref().name)?;
        self.tasks
            .reopen_task(&context, &name, &request.get_ref().etag)
            .await
            .map(shown)
    }

    async fn add_comment(
        &self,
        request: Request<AddCommentRequest>,
    ) -> Result<Response<Comment>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let parent = TaskName::parse("parent", &request.parent)?;
        self.tasks
            .authorize(&context, &parent.project, Access::Write)
            .await?;
        let comment = request.comment.ok_or_else(|| required("comment"))?;
        self.tasks
            .add_comment(&context, &parent, &comment.text, &request.request_id)
            .await
            .map(Response::new)
    }

    async fn update_comment(
        &self,
        request: Request<UpdateCommentRequest>,
    ) -> Result<Response<Comment>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let comment = request.comment.ok_or_else(|| required("comment"))?;
        let name = ChildName::parse::<Comment>("comment.name", &comment.name)?;
        self.tasks
            .authorize(&context, &name.task.project, Access::Write)
            .await?;
        aip::update_paths(request.update_mask.as_ref(), &["text"])?;
        self.tasks
            .update_comment(&context, &name, &comment.text)
            .await
            .map(Response::new)
    }

    async fn delete_comment(
        &self,
        request: Request<DeleteCommentRequest>,
    ) -> Result<Response<()>, Status> {
        let context = CallContext::of(&request);
        let name = ChildName::parse::<Comment>("name", &request.get_ref().name)?;
        self.tasks
            .delete_comment(&context, &name)
            .await
            .map(Response::new)
    }

    async fn list_comments(
        &self,
        request: Request<ListCommentsRequest>,
    ) -> Result<Response<ListCommentsResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let parent = TaskName::parse("parent", &request.parent)?;
        let (comments, next_page_token) = self
            .tasks
            .list_comments(&context, &parent, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(ListCommentsResponse {
            comments,
            next_page_token,
        }))
    }

    async fn log_work(
        &self,
        request: Request<LogWorkRequest>,
    ) -> Result<Response<WorkLog>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let parent = TaskName::parse("parent", &request.parent)?;
        self.tasks
            .authorize(&context, &parent.project, Access::Write)
            .await?;
        let log = request.work_log.ok_or_else(|| required("work_log"))?;
        self.tasks
            .log_work(&context, &parent, log, &request.request_id)
            .await
            .map(Response::new)
    }

    async fn list_work_logs(
        &self,
        request: Request<ListWorkLogsRequest>,
    ) -> Result<Response<ListWorkLogsResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let parent = TaskName::parse("parent", &request.parent)?;
        let (work_logs, next_page_token, total) = self
            .tasks
            .list_work_logs(&context, &parent, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(ListWorkLogsResponse {
            work_logs,
            next_page_token,
            total,
        }))
    }

    async fn list_task_activity(
        &self,
        request: Request<ListTaskActivityRequest>,
    ) -> Result<Response<ListTaskActivityResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let parent = TaskName::parse("parent", &request.parent)?;
        let (activities, next_page_token) = self
            .tasks
            .list_activity(&context, &parent, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(ListTaskActivityResponse {
            activities,
            next_page_token,
        }))
    }
}

/// Handles `taskmesh.tasks.v1.TaskAdminService`.
#[derive(Debug, Clone)]
pub struct TaskAdmin {
    pool: sqlx::PgPool,
    /// Who may call these RPCs (`auth.operators`).
    operators: Vec<String>,
}

impl TaskAdmin {
    /// Admin handlers over the service's database, for `operators` only.
    pub fn new(pool: sqlx::PgPool, operators: Vec<String>) -> Self {
        Self { pool, operators }
    }
}

#[tonic::async_trait]
impl TaskAdminService for TaskAdmin {
    async fn rebuild_read_model(
        &self,
        request: Request<RebuildReadModelRequest>,
    ) -> Result<Response<RebuildReadModelResponse>, Status> {
        taskmesh_mesh::CallContext::of(&request).require_operator(&self.operators)?;
        let (events, tasks) = read_model::rebuild(&self.pool).await?;
        tracing::info!(events, tasks, "read model rebuilt");
        Ok(Response::new(RebuildReadModelResponse { events, tasks }))
    }
}
