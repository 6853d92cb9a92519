//! ProjectService: create, get, list (filter, order, paging), update with mask and etag, soft delete,
//! undelete, idempotent create, the project limit and the owner membership.

use taskmesh_contracts::projects_v1::{
    CreateOrganizationRequest, CreateProjectRequest, DeleteProjectRequest, GetMemberRequest,
    GetProjectRequest, ListProjectsRequest, Organization, Project, Role, UndeleteProjectRequest,
    UpdateProjectRequest,
};
use tonic::Code;

use crate::helpers::{as_user, reason, spawn_app, spawn_app_with, violations};

fn project(display_name: &str) -> Project {
    Project {
        display_name: display_name.to_owned(),
        ..Default::default()
    }
}

fn create(display_name: &str) -> CreateProjectRequest {
    CreateProjectRequest {
        project: Some(project(display_name)),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_get_and_list_a_project() {
    let app = spawn_app().await;
    let mut client = app.projects();
    let created = client
        .create_project(as_user("ada", create("Roadmap")))
        .await
        .expect("create")
        .into_inner();
    assert!(created.name.starts_with("projects/"));
    assert_eq!(created.display_name, "Roadmap");
    assert_eq!(created.creator, "users/ada");
    assert!(!created.etag.is_empty());
    assert!(created.create_time.is_some());

    let fetched = client
        .get_project(GetProjectRequest {
            name: created.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(fetched, created);

    let listed = client
        .list_projects(ListProjectsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.projects, vec![created.clone()]);

    // The creator became the owner.
    let owner = app
        .members()
        .get_member(GetMemberRequest {
            name: format!("{}/members/ada", created.name),
        })
        .await
        .expect("owner membership")
        .into_inner();
    assert_eq!(owner.role, Role::Owner as i32);
}

#[tokio::test]
async fn invalid_projects_get_a_violation_per_field() {
    let app = spawn_app().await;
    let mut client = app.projects();
    let err = client
        .create_project(CreateProjectRequest {
            project: Some(Project {
                display_name: "  ".into(),
                description: "d".repeat(1025),
                organization: "orgs/x".into(),
                ..Default::default()
            }),
            project_id: "Bad_Id".into(),
            request_id: "not-a-uuid".into(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "project.description",
            "project.display_name",
            "project.organization",
            "project_id",
            "request_id"
        ]
    );

    let missing = client
        .create_project(CreateProjectRequest::default())
        .await
        .expect_err("missing project");
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert_eq!(violations(&missing), vec!["project"]);

    let name = client
        .create_project(create(&"x".repeat(65)))
        .await
        .expect_err("too long");
    assert_eq!(violations(&name), vec!["project.display_name"]);
}

#[tokio::test]
async fn names_are_unique_within_the_parent() {
    let app = spawn_app().await;
    let mut client = app.projects();
    client
        .create_project(create("Website"))
        .await
        .expect("first");
    let err = client
        .create_project(create("website"))
        .await
        .expect_err("duplicate name");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(reason(&err), "DISPLAY_NAME_TAKEN");

    // Another creator's personal project may use the same name.
    client
        .create_project(as_user("bob", create("Website")))
        .await
        .expect("other creator");

    let with_id = CreateProjectRequest {
        project: Some(project("One")),
        project_id: "my-project".into(),
        ..Default::default()
    };
    let first = client
        .create_project(with_id.clone())
        .await
        .expect("with id")
        .into_inner();
    assert_eq!(first.name, "projects/my-project");
    let again = CreateProjectRequest {
        project: Some(project("Two")),
        ..with_id
    };
    let err = client.create_project(again).await.expect_err("id taken");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(reason(&err), "RESOURCE_EXISTS");
}

#[tokio::test]
async fn the_same_request_id_creates_one_project() {
    let app = spawn_app().await;
    let mut client = app.projects();
    let request = CreateProjectRequest {
        project: Some(project("Once")),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let first = client
        .create_project(request.clone())
        .await
        .expect("first")
        .into_inner();
    let second = client
        .create_project(request)
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(first, second);
    let listed = client
        .list_projects(ListProjectsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.projects.len(), 1);
}

/// A request id is its caller's: another user sending the same id gets a project of their own,
/// never the first caller's, and the first caller's retry still finds theirs.
#[tokio::test]
async fn a_request_id_replays_only_for_its_own_caller() {
    use taskmesh_contracts::projects_v1::project_service_client::ProjectServiceClient;
    let app = spawn_app().await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let create = |name: &str| CreateProjectRequest {
        project: Some(project(name)),
        request_id: request_id.clone(),
        ..Default::default()
    };
    let ada = app
        .projects()
        .create_project(create("Ada's"))
        .await
        .expect("ada")
        .into_inner();
    let mut mallory = ProjectServiceClient::new(app.channel.clone());
    let theirs = mallory
        .create_project(as_user("mallory", create("Mallory's")))
        .await
        .expect("mallory")
        .into_inner();
    assert_ne!(theirs.name, ada.name, "not ada's project");
    assert_eq!(theirs.display_name, "Mallory's");
    let again = app
        .projects()
        .create_project(create("Ada's"))
        .await
        .expect("ada again")
        .into_inner();
    assert_eq!(again, ada);
}

#[tokio::test]
async fn an_organization_holds_at_most_the_configured_number_of_projects() {
    let app = spawn_app_with(|l| l.set("limits.max_projects_per_organization", 2)).await;
    let org = app
        .organizations()
        .create_organization(CreateOrganizationRequest {
            organization: Some(Organization {
                display_name: "Acme".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("org")
        .into_inner();
    let mut client = app.projects();
    let in_org = |name: &str| CreateProjectRequest {
        project: Some(Project {
            display_name: name.into(),
            organization: org.name.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let first = client
        .create_project(in_org("A"))
        .await
        .expect("1")
        .into_inner();
    client.create_project(in_org("B")).await.expect("2");
    let err = client.create_project(in_org("C")).await.expect_err("limit");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "PROJECT_LIMIT_REACHED");

    // Deleting one frees a place; undeleting it then would exceed the limit again.
    client
        .delete_project(DeleteProjectRequest {
            name: first.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("delete");
    client
        .create_project(in_org("C"))
        .await
        .expect("room again");
    let err = client
        .undelete_project(UndeleteProjectRequest {
            name: first.name,
            etag: String::new(),
        })
        .await
        .expect_err("undelete over limit");
    assert_eq!(reason(&err), "PROJECT_LIMIT_REACHED");

    let unknown = client
        .create_project(CreateProjectRequest {
            project: Some(Project {
                display_name: "Z".into(),
                organization: "organizations/nope".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("unknown org");
    // Only an organization's owner creates projects in it; a missing one looks the same.
    assert_eq!(unknown.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn the_default_limit_is_six_projects() {
    let app = spawn_app().await;
    let mut client = app.projects();
    for i in 0..6 {
        client
            .create_project(create(&format!("P{i}")))
            .await
            .expect("within limit");
    }
    let err = client
        .create_project(create("P6"))
        .await
        .expect_err("seventh");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "PROJECT_LIMIT_REACHED");
}

#[tokio::test]
async fn updates_follow_the_mask_and_the_etag() {
    let app = spawn_app().await;
    let mut client = app.projects();
    let created = client
        .create_project(create("Old"))
        .await
        .expect("create")
        .into_inner();

    let updated = client
        .update_project(UpdateProjectRequest {
            project: Some(Project {
                name: created.name.clone(),
                display_name: "New".into(),
                description: "ignored: not in the mask".into(),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.display_name, "New");
    assert_eq!(updated.description, "");
    assert_ne!(updated.etag, created.etag);

    let stale = client
        .update_project(UpdateProjectRequest {
            project: Some(Project {
                name: created.name.clone(),
                display_name: "Lost".into(),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    assert_eq!(reason(&stale), "ETAG_MISMATCH");

    let bad_mask = client
        .update_project(UpdateProjectRequest {
            project: Some(Project {
                name: created.name.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["creator".into()],
            }),
        })
        .await
        .expect_err("bad mask");
    assert_eq!(violations(&bad_mask), vec!["update_mask"]);

    let missing = client
        .update_project(UpdateProjectRequest {
            project: Some(Project {
                name: "projects/missing".into(),
                display_name: "X".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn soft_delete_hides_and_undelete_restores() {
    let app = spawn_app().await;
    let mut client = app.projects();
    let created = client
        .create_project(create("Temp"))
        .await
        .expect("create")
        .into_inner();

    let stale = client
        .delete_project(DeleteProjectRequest {
            name: created.name.clone(),
            etag: "v99".into(),
        })
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);

    let deleted = client
        .delete_project(DeleteProjectRequest {
            name: created.name.clone(),
            etag: created.etag.clone(),
        })
        .await
        .expect("delete")
        .into_inner();
    assert!(deleted.delete_time.is_some());

    let visible = client
        .list_projects(ListProjectsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(visible.projects.is_empty());
    let all = client
        .list_projects(ListProjectsRequest {
            show_deleted: true,
            ..Default::default()
        })
        .await
        .expect("list deleted")
        .into_inner();
    assert_eq!(all.projects.len(), 1);

    // A deleted project can still be read; deleting it again is NOT_FOUND.
    let fetched = client
        .get_project(GetProjectRequest {
            name: created.name.clone(),
        })
        .await
        .expect("get deleted")
        .into_inner();
    assert!(fetched.delete_time.is_some());
    let again = client
        .delete_project(DeleteProjectRequest {
            name: created.name.clone(),
            etag: String::new(),
        })
        .await
        .expect_err("twice");
    assert_eq!(again.code(), Code::NotFound);

    let restored = client
        .undelete_project(UndeleteProjectRequest {
            name: created.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("undelete")
        .into_inner();
    assert!(restored.delete_time.is_none());
    let not_deleted = client
        .undelete_project(UndeleteProjectRequest {
            name: created.name,
            etag: String::new(),
        })
        .await
        .expect_err("not deleted");
    assert_eq!(not_deleted.code(), Code::FailedPrecondition);
    assert_eq!(reason(&not_deleted), "NOT_DELETED");
}

#[tokio::test]
async fn lists_filter_order_and_page() {
    let app = spawn_app_with(|l| l.set("limits.max_projects_per_organization", 50)).await;
    let mut client = app.projects();
    for i in 0..23 {
        client
            .create_project(create(&format!("Project {i:02}")))
            .await
            .expect("create");
    }
    client
        .create_project(create("Other"))
        .await
        .expect("create");

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_projects(ListProjectsRequest {
                page_size: 5,
                page_token: token.clone(),
                filter: "display_name:\"project\"".into(),
                order_by: "display_name desc".into(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        assert!(page.projects.len() <= 5);
        seen.extend(page.projects.into_iter().map(|p| p.display_name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<String> = (0..23).rev().map(|i| format!("Project {i:02}")).collect();
    assert_eq!(seen, expected);

    // A token only serves the request it came from.
    let first = client
        .list_projects(ListProjectsRequest {
            page_size: 5,
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    let err = client
        .list_projects(ListProjectsRequest {
            page_size: 5,
            page_token: first.next_page_token,
            filter: "display_name = \"Other\"".into(),
            ..Default::default()
        })
        .await
        .expect_err("token reused with another filter");
    assert_eq!(violations(&err), vec!["page_token"]);

    for (filter, field) in [
        ("display_name = ", "filter"),
        ("colour = \"red\"", "filter"),
        ("create_time > \"yesterday\"", "filter"),
    ] {
        let err = client
            .list_projects(ListProjectsRequest {
                filter: filter.into(),
                ..Default::default()
            })
            .await
            .expect_err(filter);
        assert_eq!(err.code(), Code::InvalidArgument, "{filter}");
        assert_eq!(violations(&err), vec![field], "{filter}");
    }
    let err = client
        .list_projects(ListProjectsRequest {
            order_by: "colour".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad order");
    assert_eq!(violations(&err), vec!["order_by"]);
    let err = client
        .list_projects(ListProjectsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .expect_err("negative page size");
    assert_eq!(violations(&err), vec!["page_size"]);
}

#[tokio::test]
async fn malformed_names_are_invalid_arguments() {
    let app = spawn_app().await;
    let err = app
        .projects()
        .get_project(GetProjectRequest {
            name: "project/x".into(),
        })
        .await
        .expect_err("malformed");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), vec!["name"]);
    let err = app
        .projects()
        .get_project(GetProjectRequest {
            name: "projects/absent".into(),
        })
        .await
        .expect_err("absent");
    // Permission is checked before existence: a missing project looks like a foreign one.
    assert_eq!(err.code(), Code::PermissionDenied);
}
