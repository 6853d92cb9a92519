//! OrganizationService: lifecycle, uniqueness and the rule that an organization with live projects
//! cannot be deleted.

use taskmesh_contracts::projects_v1::{
    CreateOrganizationRequest, CreateProjectRequest, DeleteOrganizationRequest,
    DeleteProjectRequest, GetOrganizationRequest, ListOrganizationsRequest, Organization, Project,
    UndeleteOrganizationRequest, UpdateOrganizationRequest,
};
use tonic::Code;

use crate::helpers::{reason, spawn_app, violations};

fn create(display_name: &str, id: &str) -> CreateOrganizationRequest {
    CreateOrganizationRequest {
        organization: Some(Organization {
            display_name: display_name.into(),
            ..Default::default()
        }),
        organization_id: id.into(),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn organizations_live_through_create_update_delete_and_undelete() {
    let app = spawn_app().await;
    let mut client = app.organizations();
    let org = client
        .create_organization(create("Acme", "acme"))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(org.name, "organizations/acme");

    let duplicate = client
        .create_organization(create("ACME", ""))
        .await
        .expect_err("same name");
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    let updated = client
        .update_organization(UpdateOrganizationRequest {
            organization: Some(Organization {
                name: org.name.clone(),
                description: "Rockets".into(),
                etag: org.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["description".into()],
            }),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.description, "Rockets");
    assert_eq!(updated.display_name, "Acme");

    // An organization with a live project cannot be deleted.
    let project = app
        .projects()
        .create_project(CreateProjectRequest {
            project: Some(Project {
                display_name: "Launch".into(),
                organization: org.name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("project")
        .into_inner();
    let err = client
        .delete_organization(DeleteOrganizationRequest {
            name: org.name.clone(),
            etag: String::new(),
        })
        .await
        .expect_err("not empty");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "ORGANIZATION_NOT_EMPTY");
    app.projects()
        .delete_project(DeleteProjectRequest {
            name: project.name,
            etag: String::new(),
        })
        .await
        .expect("delete project");

    let deleted = client
        .delete_organization(DeleteOrganizationRequest {
            name: org.name.clone(),
            etag: updated.etag.clone(),
        })
        .await
        .expect("delete")
        .into_inner();
    assert!(deleted.delete_time.is_some());

    // Creating a project in a deleted organization is refused.
    let err = app
        .projects()
        .create_project(CreateProjectRequest {
            project: Some(Project {
                display_name: "Late".into(),
                organization: org.name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("deleted parent");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "PARENT_DELETED");

    let listed = client
        .list_organizations(ListOrganizationsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(listed.organizations.is_empty());

    let restored = client
        .undelete_organization(UndeleteOrganizationRequest {
            name: org.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("undelete")
        .into_inner();
    assert!(restored.delete_time.is_none());
    let live = client
        .undelete_organization(UndeleteOrganizationRequest {
            name: org.name.clone(),
            etag: String::new(),
        })
        .await
        .expect_err("undelete a live organization");
    assert_eq!(live.code(), Code::FailedPrecondition);
    assert_eq!(reason(&live), "NOT_DELETED");
    let fetched = client
        .get_organization(GetOrganizationRequest { name: org.name })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(fetched, restored);
}

#[tokio::test]
async fn organization_ids_and_names_are_validated() {
    let app = spawn_app().await;
    let mut client = app.organizations();
    let err = client
        .create_organization(create("", "x"))
        .await
        .expect_err("invalid");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(fields, vec!["organization.display_name", "organization_id"]);
    let err = client
        .get_organization(GetOrganizationRequest {
            name: "organizations/".into(),
        })
        .await
        .expect_err("bad name");
    assert_eq!(err.code(), Code::InvalidArgument);
}
