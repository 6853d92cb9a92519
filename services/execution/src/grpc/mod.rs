//! `taskmesh.execution.v1.ExecutionService`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
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
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::store::changes::{Change, Changes};
use crate::store::{Store, is_final};

/// Open watch streams per caller, and how long one may last.
#[derive(Debug, Clone)]
pub struct WatchLimits {
    open: Arc<Mutex<HashMap<String, usize>>>,
    per_user: usize,
    lifetime: Duration,
}

impl WatchLimits {
    /// At most `per_user` streams per caller, each for at most `lifetime`.
    pub fn new(per_user: usize, lifetime: Duration) -> Self {
        Self {
            open: Arc::default(),
            per_user,
            lifetime,
        }
    }

    /// A place for one more stream of `caller`, freed when dropped.
    fn claim(&self, caller: &str) -> Result<WatchSlot, Error> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(caller.to_owned()).or_default();
        if *count >= self.per_user {
            return Err(Error::TooManyWatches { max: self.per_user });
        }
        *count += 1;
        Ok(WatchSlot {
            open: Arc::clone(&self.open),
            caller: caller.to_owned(),
        })
    }
}

/// One open stream of a caller.
struct WatchSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    caller: String,
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.caller) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.caller);
            }
        }
    }
}

/// The state of one watch stream: it sends the execution, then each changed version as the
/// database announces it, until the execution ends, it is gone, or the stream's lifetime is up.
struct Watching {
    store: Store,
    name: String,
    changes: broadcast::Receiver<Change>,
    seen: String,
    first: Option<Execution>,
    done: bool,
    until: tokio::time::Instant,
    _slot: WatchSlot,
}

impl Watching {
    async fn next(mut self) -> Option<(Result<Execution, Status>, Self)> {
        if self.done {
            return None;
        }
        if let Some(execution) = self.first.take() {
            self.done = is_final(execution.state());
            return Some((Ok(execution), self));
        }
        loop {
            let heard = tokio::select! {
                heard = self.changes.recv() => heard,
                () = tokio::time::sleep_until(self.until) => return None,
            };
            match heard {
                Ok(Change::Execution(name)) if name != self.name => continue,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    self.done = true;
                    return Some((Err(taskmesh_mesh::status::unavailable("watching")), self));
                }
            }
            match self.store.get(&self.name).await {
                Ok(execution) if execution.etag == self.seen => {}
                Ok(execution) => {
                    self.seen.clone_from(&execution.etag);
                    self.done = is_final(execution.state());
                    return Some((Ok(execution), self));
                }
                Err(err) => {
                    self.done = true;
                    return Some((Err(err.into()), self));
                }
            }
        }
    }
}

/// Handles execution RPCs. Members of the task's project may read; members, admins and owners
/// may cancel and retry. Membership is checked before any lookup.
#[derive(Debug, Clone)]
pub struct ExecutionsService {
    store: Store,
    projects: ProjectsClient,
    changes: Changes,
    watches: WatchLimits,
}

impl ExecutionsService {
    /// Handlers over `store`, authorizing through `projects`; watch streams hear `changes` and
    /// are limited by `watches`.
    pub fn new(
        store: Store,
        projects: ProjectsClient,
        changes: Changes,
        watches: WatchLimits,
    ) -> Self {
        Self {
            store,
            projects,
            changes,
            watches,
        }
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
        let slot = self.watches.claim(&context.caller)?;
        // Subscribed before the first read, so no change between the two is missed.
        let changes = self.changes.subscribe();
        let first = self.store.get(&name).await?;
        let watch = Watching {
            store: self.store.clone(),
            name,
            changes,
            seen: first.etag.clone(),
            first: Some(first),
            done: false,
            until: tokio::time::Instant::now() + self.watches.lifetime,
            _slot: slot,
        };
        let stream = futures::stream::unfold(watch, Watching::next);
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
