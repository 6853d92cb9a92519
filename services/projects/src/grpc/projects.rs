//! `taskmesh.projects.v1.ProjectService`.

use taskmesh_contracts::projects_v1::Role;
use taskmesh_contracts::projects_v1::project_service_server::ProjectService;
use taskmesh_contracts::projects_v1::{
    CreateProjectRequest, DeleteProjectRequest, GetProjectRequest, ListProjectsRequest,
    ListProjectsResponse, Project, UndeleteProjectRequest, UpdateProjectRequest,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip;
use tonic::{Request, Response, Status};

use super::{name_changes, required, resource_id};
use crate::domain::rules;
use crate::domain::{OrganizationName, ProjectName};
use crate::store::Store;
use crate::store::projects::NewProject;

/// Handles project RPCs.
#[derive(Debug, Clone)]
pub struct ProjectsService {
    store: Store,
}

impl ProjectsService {
    /// Handlers over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl ProjectService for ProjectsService {
    async fn create_project(
        &self,
        request: Request<CreateProjectRequest>,
    ) -> Result<Response<Project>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let project = request.project.ok_or_else(|| required("project"))?;
        let organization = if project.organization.is_empty() {
            None
        } else {
            Some(
                OrganizationName::parse("project.organization", &project.organization)?
                    .organization,
            )
        };
        if let Some(organization) = &organization {
            self.store.require_owner(&context, organization).await?;
        }
        let new = NewProject {
            id: resource_id(&request.project_id),
            organization,
            display_name: rules::display_name(&project.display_name),
            description: project.description,
            request_id: aip::request_id(&request.request_id),
        };
        self.store
            .create_project(&context, new)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn get_project(
        &self,
        request: Request<GetProjectRequest>,
    ) -> Result<Response<Project>, Status> {
        let context = CallContext::of(&request);
        let name = ProjectName::parse("name", &request.get_ref().name)?;
        self.store
            .get_project_as(&context, &name, Role::Viewer)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn list_projects(
        &self,
        request: Request<ListProjectsRequest>,
    ) -> Result<Response<ListProjectsResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let (projects, next_page_token) = self
            .store
            .list_projects(
                &context,
                &request.filter,
                &request.order_by,
                request.show_deleted,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(ListProjectsResponse {
            projects,
            next_page_token,
        }))
    }

    async fn update_project(
        &self,
        request: Request<UpdateProjectRequest>,
    ) -> Result<Response<Project>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let project = request.project.ok_or_else(|| required("project"))?;
        let name = ProjectName::parse("project.name", &project.name)?;
        self.store
            .require(&context, &name.project, Role::Admin)
            .await?;
        let (changes, paths) = name_changes(
            &project.display_name,
            &project.description,
            request.update_mask.as_ref(),
        )?;
        self.store
            .update_project(&context, &name, &project.etag, changes, paths)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn delete_project(
        &self,
        request: Request<DeleteProjectRequest>,
    ) -> Result<Response<Project>, Status> {
        let context = CallContext::of(&request);
        let name = ProjectName::parse("name", &request.get_ref().name)?;
        self.store
            .require(&context, &name.project, Role::Owner)
            .await?;
        self.store
            .delete_project(&context, &name, &request.get_ref().etag)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn undelete_project(
        &self,
        request: Request<UndeleteProjectRequest>,
    ) -> Result<Response<Project>, Status> {
        let context = CallContext::of(&request);
        let name = ProjectName::parse("name", &request.get_ref().name)?;
        self.store
            .require(&context, &name.project, Role::Owner)
            .await?;
        self.store
            .undelete_project(&context, &name, &request.get_ref().etag)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }
}
