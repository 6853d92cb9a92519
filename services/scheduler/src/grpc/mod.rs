//! `taskmesh.scheduler.v1.ScheduleService`: parse, authorize, call the store, map. Members of the
//! project read schedules; members who may write (not viewers) create and change them. A task
//! template's column must belong to the schedule's project and exist; its kind gives the status
//! of the tasks the schedule creates.

pub mod reminders;

use std::sync::Arc;

use chrono::Utc;
use taskmesh_clients::projects::{Access, ProjectsClient, task_status};
use taskmesh_contracts::scheduler_v1::schedule_service_server::ScheduleService;
use taskmesh_contracts::scheduler_v1::{
    Action, CreateScheduleRequest, DeleteScheduleRequest, FireTime, GetScheduleRequest,
    ListSchedulesRequest, ListSchedulesResponse, MisfirePolicy, PauseScheduleRequest,
    PreviewScheduleRequest, PreviewScheduleResponse, ResumeScheduleRequest, Schedule, State,
    UpdateScheduleRequest, action,
};
use taskmesh_mesh::names::ResourcePattern;
use taskmesh_mesh::sealed::Sealer;
use taskmesh_mesh::status::{invalid_field, required};
use taskmesh_mesh::time::to_timestamp;
use taskmesh_mesh::{CallContext, aip};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::domain::{self, secrets};
use crate::store::{Changes, NewSchedule, Store};

/// Fields UpdateSchedule may change.
const UPDATABLE: &[&str] = &[
    "display_name",
    "trigger",
    "action",
    "misfire_policy",
    "catch_up_window",
];

/// Occurrences :preview shows when the request does not say.
const DEFAULT_PREVIEW: usize = 10;

/// Handles schedule RPCs.
#[derive(Debug, Clone)]
pub struct SchedulesService {
    store: Store,
    projects: ProjectsClient,
    sealer: Sealer,
    wake: Arc<Notify>,
    max_per_project: i64,
}

impl SchedulesService {
    /// Handlers over `store`, authorizing through `projects`, sealing template secrets with
    /// `sealer`; `wake` tells this process's firer that a schedule may be due sooner; a project
    /// holds at most `max_per_project` schedules.
    pub fn new(
        store: Store,
        projects: ProjectsClient,
        sealer: Sealer,
        wake: Arc<Notify>,
        max_per_project: i64,
    ) -> Self {
        Self {
            store,
            projects,
            sealer,
            wake,
            max_per_project,
        }
    }

    /// Checks the schedule name in `field` and that the caller may `access` its project; returns
    /// the project id.
    async fn authorize<'a>(
        &self,
        context: &CallContext,
        field: &str,
        name: &'a str,
        access: Access,
    ) -> Result<&'a str, Status> {
        let [project, _] = ResourcePattern::of::<Schedule>().parse(field, name)?;
        self.projects.authorize(context, project, access).await?;
        Ok(project)
    }

    /// The action with its template checked against the project, secrets sealed for
    /// `schedule`, and the status its column gives (0 for other actions).
    async fn action(
        &self,
        context: &CallContext,
        project: &str,
        schedule: &str,
        mut action: Action,
        previous: Option<&Action>,
    ) -> Result<(Action, i32), Status> {
        let status = match action.kind.as_ref() {
            Some(action::Kind::CreateTask(template)) => {
                let field = "schedule.action.create_task.column";
                let [column_project, _, _] =
                    ResourcePattern::of::<taskmesh_contracts::projects_v1::Column>()
                        .parse(field, &template.column)?;
                if column_project != project {
                    return Err(invalid_field(
                        field,
                        format!("must be a column of projects/{project}"),
                    ));
                }
                let column = self.projects.column(context, &template.column).await?;
                task_status(column.kind) as i32
            }
            Some(action::Kind::Notify(_)) => 0,
            None => return Err(required("schedule.action")),
        };
        secrets::seal(&self.sealer, schedule, &mut action, previous);
        Ok((action, status))
    }
}

#[tonic::async_trait]
impl ScheduleService for SchedulesService {
    async fn create_schedule(
        &self,
        request: Request<CreateScheduleRequest>,
    ) -> Result<Response<Schedule>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let [project] = ResourcePattern::of::<taskmesh_contracts::projects_v1::Project>()
            .parse("parent", &request.parent)?;
        self.projects
            .authorize(&context, project, Access::Write)
            .await?;
        let schedule = request.schedule.ok_or_else(|| required("schedule"))?;
        if schedule.display_name.trim().is_empty() {
            return Err(required("schedule.display_name"));
        }
        let trigger = schedule
            .trigger
            .as_ref()
            .ok_or_else(|| required("schedule.trigger"))?;
        let now = Utc::now();
        let (parsed, stored) = domain::parse_trigger(trigger, now).map_err(crate::Error::from)?;
        let next_fire_time = domain::first_occurrence(&parsed, now).map_err(crate::Error::from)?;
        let name = format!("projects/{project}/schedules/{}", aip::new_id());
        let action = schedule.action.ok_or_else(|| required("schedule.action"))?;
        let (action, task_status) = self.action(&context, project, &name, action, None).await?;
        let row = self
            .store
            .create(
                NewSchedule {
                    name,
                    project: project.to_owned(),
                    display_name: schedule.display_name,
                    trigger: stored,
                    action,
                    task_status,
                    misfire_policy: policy(schedule.misfire_policy),
                    catch_up_window_ms: domain::catch_up_window(schedule.catch_up_window.as_ref())
                        .num_milliseconds(),
                    next_fire_time,
                    owner: context.caller.clone(),
                    request_id: aip::request_id(&request.request_id),
                },
                self.max_per_project,
            )
            .await?;
        self.wake.notify_one();
        Ok(Response::new(row.to_proto()))
    }

    async fn get_schedule(
        &self,
        request: Request<GetScheduleRequest>,
    ) -> Result<Response<Schedule>, Status> {
        let context = CallContext::of(&request);
        let name = &request.get_ref().name;
        self.authorize(&context, "name", name, Access::Read).await?;
        Ok(Response::new(self.store.get(name).await?.to_proto()))
    }

    async fn list_schedules(
        &self,
        request: Request<ListSchedulesRequest>,
    ) -> Result<Response<ListSchedulesResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let [project] = ResourcePattern::of::<taskmesh_contracts::projects_v1::Project>()
            .parse("parent", &request.parent)?;
        self.projects
            .authorize(&context, project, Access::Read)
            .await?;
        let page = aip::page(request.page_size, &request.page_token, &request.parent)?;
        let (rows, next_page_token) = self.store.list(project, page).await?;
        Ok(Response::new(ListSchedulesResponse {
            schedules: rows.iter().map(crate::store::Row::to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_schedule(
        &self,
        request: Request<UpdateScheduleRequest>,
    ) -> Result<Response<Schedule>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let schedule = request.schedule.ok_or_else(|| required("schedule"))?;
        let name = schedule.name.clone();
        let project = self
            .authorize(&context, "schedule.name", &name, Access::Write)
            .await?;
        let paths = aip::update_paths(request.update_mask.as_ref(), UPDATABLE)?;
        let mut changes = Changes::default();
        let now = Utc::now();
        for path in paths {
            match path {
                "display_name" => {
                    if schedule.display_name.trim().is_empty() {
                        return Err(required("schedule.display_name"));
                    }
                    changes.display_name = Some(schedule.display_name.clone());
                }
                "trigger" => {
                    let trigger = schedule
                        .trigger
                        .as_ref()
                        .ok_or_else(|| required("schedule.trigger"))?;
                    let (parsed, stored) =
                        domain::parse_trigger(trigger, now).map_err(crate::Error::from)?;
                    let next =
                        domain::first_occurrence(&parsed, now).map_err(crate::Error::from)?;
                    changes.trigger = Some((stored, next));
                }
                "action" => {
                    let action = schedule
                        .action
                        .clone()
                        .ok_or_else(|| required("schedule.action"))?;
                    // A header sent back redacted keeps its sealed value from the stored action.
                    let previous = self.store.get(&name).await?.action();
                    changes.action = Some(
                        self.action(&context, project, &name, action, Some(&previous))
                            .await?,
                    );
                }
                "misfire_policy" => changes.misfire_policy = Some(policy(schedule.misfire_policy)),
                "catch_up_window" => {
                    changes.catch_up_window_ms = Some(
                        domain::catch_up_window(schedule.catch_up_window.as_ref())
                            .num_milliseconds(),
                    );
                }
                _ => {}
            }
        }
        let row = self
            .store
            .update(&name, &schedule.etag, &context.caller, changes)
            .await?;
        self.wake.notify_one();
        Ok(Response::new(row.to_proto()))
    }

    async fn delete_schedule(
        &self,
        request: Request<DeleteScheduleRequest>,
    ) -> Result<Response<()>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        self.authorize(&context, "name", &request.name, Access::Write)
            .await?;
        self.store.delete(&request.name, &request.etag).await?;
        Ok(Response::new(()))
    }

    async fn pause_schedule(
        &self,
        request: Request<PauseScheduleRequest>,
    ) -> Result<Response<Schedule>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        self.authorize(&context, "name", &request.name, Access::Write)
            .await?;
        let row = self.store.pause(&request.name, &request.etag).await?;
        Ok(Response::new(row.to_proto()))
    }

    async fn resume_schedule(
        &self,
        request: Request<ResumeScheduleRequest>,
    ) -> Result<Response<Schedule>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        self.authorize(&context, "name", &request.name, Access::Write)
            .await?;
        let row = self
            .store
            .resume(&request.name, &request.etag, &context.caller)
            .await?;
        self.wake.notify_one();
        Ok(Response::new(row.to_proto()))
    }

    async fn preview_schedule(
        &self,
        request: Request<PreviewScheduleRequest>,
    ) -> Result<Response<PreviewScheduleResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        self.authorize(&context, "name", &request.name, Access::Read)
            .await?;
        let row = self.store.get(&request.name).await?;
        let trigger = domain::stored_trigger(&row.trigger()).map_err(crate::Error::from)?;
        let count = match usize::try_from(request.count) {
            Ok(0) | Err(_) => DEFAULT_PREVIEW,
            Ok(n) => n,
        };
        // An active schedule shows what it will fire, its pending next occurrence first; any
        // other shows what its trigger gives from now on.
        let mut times = Vec::with_capacity(count);
        let from = match (row.state(), row.next_fire_time) {
            (State::Active, Some(next)) => {
                times.push(next);
                next
            }
            (State::Completed, _) => {
                return Ok(Response::new(PreviewScheduleResponse::default()));
            }
            _ => Utc::now(),
        };
        times.extend(trigger.upcoming(from, count - times.len()));
        Ok(Response::new(PreviewScheduleResponse {
            fire_times: times
                .into_iter()
                .map(|t| FireTime {
                    fire_time: Some(to_timestamp(t)),
                    local_time: trigger.local_time(t),
                })
                .collect(),
        }))
    }
}

fn policy(number: i32) -> MisfirePolicy {
    match MisfirePolicy::try_from(number) {
        Ok(MisfirePolicy::Unspecified) | Err(_) => MisfirePolicy::FireOnce,
        Ok(policy) => policy,
    }
}
