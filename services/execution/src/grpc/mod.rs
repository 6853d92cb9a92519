//! `taskmesh.execution.v1.ExecutionService`.

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use taskmesh_clients::projects::{Access, ProjectsClient};
use taskmesh_contracts::execution_v1::execution_service_server::ExecutionService;
use taskmesh_contracts::execution_v1::{
    CancelExecutionRequest, Execution, GetExecutionRequest, ListExecutionsRequest,
    ListExecutionsResponse, RetryExecutionRequest, WatchExecutionRequest,
};
use taskmesh_contracts::tasks_v1::Task;
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip;
use taskmesh_mesh::names::ResourcePattern;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::store::{Store, is_final};

/// How often a watch looks for changes.
const WATCH_POLL: Duration = Duration::from_millis(100);

/// Handles execution RPCs. Members of the task's project may read; members, admins and owners
/// may cancel and retry. Membership is checked before any lookup.
#[derive(Debug, Clone)]
pub struct ExecutionsService {
    store: Store,
    projects: ProjectsClient,
}

impl ExecutionsService {
    /// Handlers over `store`, authorizing through `projects`.
    pub fn new(store: Store, projects: ProjectsClient) -> Self {
        Self { store, projects }
    }

    /// Checks the execution name in field `name` and that the caller may `access` its project.
    async fn authorize(
        &self,
        context: &CallContext,
        name: &str,
        access: Access,
    ) -> Result<(), Status> {
        let [project, _, _] = ResourcePattern::of::<Execution>().parse("name", name)?;
        self.projects.authorize(context, project, access).await?;
        Ok(())
    }
}

#[tonic::async_trait]
impl ExecutionService for ExecutionsService {
    async fn get_execution(
        &self,
        request: Request<GetExecutionRequest>,
    ) -> Result<Response<Execution>, Status> {
        let context = CallContext::of(&request);
        self.authorize(&context, &request.get_ref().name, Access::Read)
            .await?;
        Ok(Response::new(
            self.store.get(&request.get_ref().name).await?,
        ))
    }

    async fn list_executions(
        &self,
        request: Request<ListExecutionsRequest>,
    ) -> Result<Response<ListExecutionsResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let [project, _] = ResourcePattern::of::<Task>().parse("parent", &request.parent)?;
        self.projects
            .authorize(&context, project, Access::Read)
            .await?;
        let page = aip::page(request.page_size, &request.page_token, &request.parent)?;
        let (executions, next_page_token) = self
            .store
            .list(&request.parent, page, &request.parent)
            .await?;
        Ok(Response::new(ListExecutionsResponse {
            executions,
            next_page_token,
        }))
    }

    type WatchExecutionStream = Pin<Box<dyn Stream<Item = Result<Execution, Status>> + Send>>;

    async fn watch_execution(
        &self,
        request: Request<WatchExecutionRequest>,
    ) -> Result<Response<Self::WatchExecutionStream>, Status> {
        let context = CallContext::of(&request);
        let name = request.into_inner().name;
        self.authorize(&context, &name, Access::Read).await?;
        let first = self.store.get(&name).await?;
        let store = self.store.clone();
        let stream = futures::stream::unfold(
            (Some(first), None::<i64>, store, name, false),
            |(pending, mut seen, store, name, done)| async move {
                if done {
                    return None;
                }
                if let Some(execution) = pending {
                    let finished = is_final(execution.state());
                    let version = execution.etag.trim_start_matches('v').parse().ok();
                    return Some((Ok(execution), (None, version, store, name, finished)));
                }
                loop {
                    tokio::time::sleep(WATCH_POLL).await;
                    match store.version(&name).await {
                        Ok(Some(version)) if Some(version) != seen => {
                            seen = Some(version);
                            return match store.get(&name).await {
                                Ok(execution) => {
                                    let finished = is_final(execution.state());
                                    Some((Ok(execution), (None, seen, store, name, finished)))
                                }
                                Err(err) => {
                                    Some((Err(err.into()), (None, seen, store, name, true)))
                                }
                            };
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            return Some((
                                Err(Status::not_found(format!("{name} not found"))),
                                (None, seen, store, name, true),
                            ));
                        }
                        Err(err) => {
                            return Some((
                                Err(Error::Database(err).into()),
                                (None, seen, store, name, true),
                            ));
                        }
                    }
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn cancel_execution(
        &self,
        request: Request<CancelExecutionRequest>,
    ) -> Result<Response<Execution>, Status> {
        let context = CallContext::of(&request);
        self.authorize(&context, &request.get_ref().name, Access::Write)
            .await?;
        Ok(Response::new(
            self.store.cancel(&request.get_ref().name).await?,
        ))
    }

    async fn retry_execution(
        &self,
        request: Request<RetryExecutionRequest>,
    ) -> Result<Response<Execution>, Status> {
        let context = CallContext::of(&request);
        self.authorize(&context, &request.get_ref().name, Access::Write)
            .await?;
        Ok(Response::new(
            self.store.retry(&request.get_ref().name).await?,
        ))
    }
}
