//! `taskmesh.projects.v1.OrganizationService`.

use taskmesh_contracts::projects_v1::organization_service_server::OrganizationService;
use taskmesh_contracts::projects_v1::{
    CreateOrganizationRequest, DeleteOrganizationRequest, GetOrganizationRequest,
    ListOrganizationsRequest, ListOrganizationsResponse, Organization, UndeleteOrganizationRequest,
    UpdateOrganizationRequest,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip;
use tonic::{Request, Response, Status};

use super::{name_changes, required, resource_id};
use crate::domain::OrganizationName;
use crate::domain::rules;
use crate::store::Store;
use crate::store::organizations::NewOrganization;

/// Handles organization RPCs.
#[derive(Debug, Clone)]
pub struct OrganizationsService {
    store: Store,
}

impl OrganizationsService {
    /// Handlers over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl OrganizationService for OrganizationsService {
    async fn create_organization(
        &self,
        request: Request<CreateOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let organization = request
            .organization
            .ok_or_else(|| required("organization"))?;
        let new = NewOrganization {
            id: resource_id(&request.organization_id),
            display_name: rules::display_name(&organization.display_name),
            description: organization.description,
            request_id: aip::request_id(&request.request_id),
        };
        self.store
            .create_organization(&context, new)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn get_organization(
        &self,
        request: Request<GetOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        let context = CallContext::of(&request);
        let name = OrganizationName::parse("name", &request.get_ref().name)?;
        self.store
            .require_owner(&context, &name.organization)
            .await?;
        self.store
            .get_organization(&name)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn list_organizations(
        &self,
        request: Request<ListOrganizationsRequest>,
    ) -> Result<Response<ListOrganizationsResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let (organizations, next_page_token) = self
            .store
            .list_organizations(
                &context,
                &request.filter,
                &request.order_by,
                request.show_deleted,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(ListOrganizationsResponse {
            organizations,
            next_page_token,
        }))
    }

    async fn update_organization(
        &self,
        request: Request<UpdateOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let organization = request
            .organization
            .ok_or_else(|| required("organization"))?;
        let name = OrganizationName::parse("organization.name", &organization.name)?;
        self.store
            .require_owner(&context, &name.organization)
            .await?;
        let (changes, paths) = name_changes(
            &organization.display_name,
            &organization.description,
            request.update_mask.as_ref(),
        )?;
        self.store
            .update_organization(&context, &name, &organization.etag, changes, paths)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn delete_organization(
        &self,
        request: Request<DeleteOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        let context = CallContext::of(&request);
        let name = OrganizationName::parse("name", &request.get_ref().name)?;
        self.store
            .require_owner(&context, &name.organization)
            .await?;
        self.store
            .delete_organization(&context, &name, &request.get_ref().etag)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn undelete_organization(
        &self,
        request: Request<UndeleteOrganizationRequest>,
    ) -> Result<Response<Organization>, Status> {
        let context = CallContext::of(&request);
        let name = OrganizationName::parse("name", &request.get_ref().name)?;
        self.store
            .require_owner(&context, &name.organization)
            .await?;
        self.store
            .undelete_organization(&context, &name, &request.get_ref().etag)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }
}
