//! `taskmesh.scheduler.v1.ReminderService`: reminders of tasks, each for the member who set it
//! (anyone who may read the project), and each user's own default reminders.

use taskmesh_clients::projects::{Access, ProjectsClient};
use taskmesh_contracts::scheduler_v1::reminder_service_server::ReminderService;
use taskmesh_contracts::scheduler_v1::{
    CreateReminderRequest, DeleteReminderRequest, GetReminderSettingsRequest, ListRemindersRequest,
    ListRemindersResponse, Reminder, ReminderSettings, UpdateReminderSettingsRequest,
};
use taskmesh_contracts::tasks_v1::Task;
use taskmesh_mesh::names::ResourcePattern;
use taskmesh_mesh::status::required;
use taskmesh_mesh::{CallContext, aip};
use tonic::{Request, Response, Status};

use crate::domain::reminders;
use crate::store::Store;

/// Handles reminder RPCs.
#[derive(Debug, Clone)]
pub struct RemindersService {
    store: Store,
    projects: ProjectsClient,
}

impl RemindersService {
    /// Handlers over `store`, authorizing through `projects`.
    pub fn new(store: Store, projects: ProjectsClient) -> Self {
        Self { store, projects }
    }

    /// Checks the task name in `field` and that the caller may read its project.
    async fn authorize_task(
        &self,
        context: &CallContext,
        field: &str,
        task: &str,
    ) -> Result<(), Status> {
        let [project, _] = ResourcePattern::of::<Task>().parse(field, task)?;
        self.projects
            .authorize(context, project, Access::Read)
            .await?;
        Ok(())
    }
}

/// PERMISSION_DENIED unless `name` (`users/{user}/reminderSettings`) is the caller's.
fn own_settings(context: &CallContext, field: &str, name: &str) -> Result<String, Status> {
    let [user] = ResourcePattern::of::<ReminderSettings>().parse(field, name)?;
    let owner = format!("users/{user}");
    if owner == context.caller {
        Ok(owner)
    } else {
        Err(Status::permission_denied(format!(
            "{} may only see and change their own reminder settings",
            context.caller
        )))
    }
}

#[tonic::async_trait]
impl ReminderService for RemindersService {
    async fn create_reminder(
        &self,
        request: Request<CreateReminderRequest>,
    ) -> Result<Response<Reminder>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        self.authorize_task(&context, "parent", &request.parent)
            .await?;
        let rule = request
            .reminder
            .and_then(|r| r.rule)
            .ok_or_else(|| required("reminder.rule"))?;
        reminders::check(&rule, "reminder.rule").map_err(crate::Error::from)?;
        let name = format!("{}/reminders/{}", request.parent, aip::new_id());
        let reminder = self
            .store
            .create_reminder(&name, &request.parent, &context.caller, &rule)
            .await?;
        Ok(Response::new(reminder))
    }

    async fn list_reminders(
        &self,
        request: Request<ListRemindersRequest>,
    ) -> Result<Response<ListRemindersResponse>, Status> {
        let context = CallContext::of(&request);
        let parent = &request.get_ref().parent;
        self.authorize_task(&context, "parent", parent).await?;
        let reminders = self.store.list_reminders(parent, &context.caller).await?;
        Ok(Response::new(ListRemindersResponse { reminders }))
    }

    async fn delete_reminder(
        &self,
        request: Request<DeleteReminderRequest>,
    ) -> Result<Response<()>, Status> {
        let context = CallContext::of(&request);
        let name = &request.get_ref().name;
        let [project, task, _] = ResourcePattern::of::<Reminder>().parse("name", name)?;
        self.projects
            .authorize(&context, project, Access::Read)
            .await?;
        let task = format!("projects/{project}/tasks/{task}");
        self.store
            .delete_reminder(name, &task, &context.caller)
            .await?;
        Ok(Response::new(()))
    }

    async fn get_reminder_settings(
        &self,
        request: Request<GetReminderSettingsRequest>,
    ) -> Result<Response<ReminderSettings>, Status> {
        let context = CallContext::of(&request);
        let owner = own_settings(&context, "name", &request.get_ref().name)?;
        Ok(Response::new(self.store.reminder_settings(&owner).await?))
    }

    async fn update_reminder_settings(
        &self,
        request: Request<UpdateReminderSettingsRequest>,
    ) -> Result<Response<ReminderSettings>, Status> {
        let context = CallContext::of(&request);
        let settings = request
            .into_inner()
            .settings
            .ok_or_else(|| required("settings"))?;
        let owner = own_settings(&context, "settings.name", &settings.name)?;
        for (n, rule) in settings.default_reminders.iter().enumerate() {
            reminders::check(rule, &format!("settings.default_reminders[{n}]"))
                .map_err(crate::Error::from)?;
        }
        Ok(Response::new(
            self.store
                .set_reminder_settings(&owner, settings.default_reminders)
                .await?,
        ))
    }
}
