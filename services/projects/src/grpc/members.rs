//! `taskmesh.projects.v1.MemberService`.

use taskmesh_contracts::projects_v1::Role;
use taskmesh_contracts::projects_v1::member_service_server::MemberService;
use taskmesh_contracts::projects_v1::{
    CreateMemberRequest, DeleteMemberRequest, GetMemberRequest, ListMembersRequest,
    ListMembersResponse, Member, UpdateMemberRequest,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip;
use tonic::{Request, Response, Status};

use super::required;
use crate::domain::rules;
use crate::domain::{MemberName, ProjectName, UserName};
use crate::store::Store;

/// Handles member RPCs.
#[derive(Debug, Clone)]
pub struct MembersService {
    store: Store,
}

impl MembersService {
    /// Handlers over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Only owners change or remove an owner's membership.
    async fn protect_owner(&self, caller: Role, name: &MemberName) -> Result<(), Status> {
        if caller == Role::Owner {
            return Ok(());
        }
        match self.store.get_member(name).await {
            Ok(member) if member.role == Role::Owner as i32 => Err(Status::permission_denied(
                "only an owner may change or remove an owner",
            )),
            _ => Ok(()),
        }
    }
}

#[tonic::async_trait]
impl MemberService for MembersService {
    async fn create_member(
        &self,
        request: Request<CreateMemberRequest>,
    ) -> Result<Response<Member>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let parent = ProjectName::parse("parent", &request.parent)?;
        self.store
            .require(&context, &parent.project, Role::Admin)
            .await?;
        let member = request.member.ok_or_else(|| required("member"))?;
        let user = UserName::parse("member.user", &member.user)?;
        let role = rules::role(member.role);
        if role == Role::Owner {
            self.store
                .require(&context, &parent.project, Role::Owner)
                .await?;
        }
        self.store
            .create_member(&context, &parent, &user, role)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn get_member(
        &self,
        request: Request<GetMemberRequest>,
    ) -> Result<Response<Member>, Status> {
        let context = CallContext::of(&request);
        let name = MemberName::parse("name", &request.get_ref().name)?;
        self.store
            .require(&context, &name.project, Role::Viewer)
            .await?;
        self.store
            .get_member(&name)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn list_members(
        &self,
        request: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let parent = ProjectName::parse("parent", &request.parent)?;
        self.store
            .require(&context, &parent.project, Role::Viewer)
            .await?;
        let (members, next_page_token) = self
            .store
            .list_members(
                &parent,
                &request.filter,
                &request.order_by,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(ListMembersResponse {
            members,
            next_page_token,
        }))
    }

    async fn update_member(
        &self,
        request: Request<UpdateMemberRequest>,
    ) -> Result<Response<Member>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let member = request.member.ok_or_else(|| required("member"))?;
        let name = MemberName::parse("member.name", &member.name)?;
        let role = self
            .store
            .require(&context, &name.project, Role::Admin)
            .await?;
        self.protect_owner(role, &name).await?;
        aip::update_paths(request.update_mask.as_ref(), &["role"])?;
        let role = rules::role(member.role);
        if role == Role::Owner {
            self.store
                .require(&context, &name.project, Role::Owner)
                .await?;
        }
        self.store
            .update_member(&context, &name, &member.etag, role)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn delete_member(
        &self,
        request: Request<DeleteMemberRequest>,
    ) -> Result<Response<()>, Status> {
        let context = CallContext::of(&request);
        let name = MemberName::parse("name", &request.get_ref().name)?;
        let role = self
            .store
            .require(&context, &name.project, Role::Admin)
            .await?;
        self.protect_owner(role, &name).await?;
        self.store
            .delete_member(&context, &name, &request.get_ref().etag)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }
}
