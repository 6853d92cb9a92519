//! MemberService: roles and the rule that a project keeps at least one owner.

use taskmesh_contracts::projects_v1::{
    CreateMemberRequest, CreateProjectRequest, DeleteMemberRequest, DeleteProjectRequest,
    ListMembersRequest, Member, Project, Role, UpdateMemberRequest,
};
use tonic::Code;

use crate::helpers::{as_user, reason, spawn_app, violations};

#[tokio::test]
async fn members_join_change_role_and_leave_but_the_last_owner_stays() {
    let app = spawn_app().await;
    let project = app
        .projects()
        .create_project(as_user(
            "ada",
            CreateProjectRequest {
                project: Some(Project {
                    display_name: "Team".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("project")
        .into_inner();
    let mut client = app.members();
    let viewer = client
        .create_member(CreateMemberRequest {
            parent: project.name.clone(),
            member: Some(Member {
                user: "users/val".into(),
                role: Role::Viewer as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("add viewer")
        .into_inner();
    assert_eq!(viewer.name, format!("{}/members/val", project.name));

    let again = client
        .create_member(CreateMemberRequest {
            parent: project.name.clone(),
            member: Some(Member {
                user: "users/val".into(),
                role: Role::Admin as i32,
                ..Default::default()
            }),
        })
        .await
        .expect_err("already a member");
    assert_eq!(again.code(), Code::AlreadyExists);

    let invalid = client
        .create_member(CreateMemberRequest {
            parent: project.name.clone(),
            member: Some(Member {
                user: "val".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("invalid");
    let mut fields = violations(&invalid);
    fields.sort();
    assert_eq!(fields, vec!["member.role", "member.user"]);

    let owners = client
        .list_members(ListMembersRequest {
            parent: project.name.clone(),
            filter: "role = ROLE_OWNER".into(),
            ..Default::default()
        })
        .await
        .expect("list owners")
        .into_inner();
    assert_eq!(owners.members.len(), 1);
    let owner = owners.members[0].clone();
    assert_eq!(owner.user, "users/ada");

    let demote = client
        .update_member(UpdateMemberRequest {
            member: Some(Member {
                name: owner.name.clone(),
                role: Role::Member as i32,
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect_err("last owner");
    assert_eq!(reason(&demote), "LAST_OWNER");
    let remove = client
        .delete_member(DeleteMemberRequest {
            name: owner.name.clone(),
            etag: String::new(),
        })
        .await
        .expect_err("last owner");
    assert_eq!(remove.code(), Code::FailedPrecondition);

    let promoted = client
        .update_member(UpdateMemberRequest {
            member: Some(Member {
                name: viewer.name.clone(),
                role: Role::Owner as i32,
                etag: viewer.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["role".into()],
            }),
        })
        .await
        .expect("promote")
        .into_inner();
    assert_eq!(promoted.role, Role::Owner as i32);
    client
        .delete_member(DeleteMemberRequest {
            name: owner.name,
            etag: String::new(),
        })
        .await
        .expect("now the first owner may leave");
    // ada left, so only a member (val, now owner) may list.
    let left = client
        .list_members(as_user(
            "val",
            ListMembersRequest {
                parent: project.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(left.members.len(), 1);
    assert_eq!(left.members[0].user, "users/val");
}

#[tokio::test]
async fn admins_manage_members_but_only_owners_touch_owners() {
    let app = spawn_app().await;
    let project = app
        .projects()
        .create_project(CreateProjectRequest {
            project: Some(Project {
                display_name: "Roles".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("project")
        .into_inner();
    let add = |user: &str, role: Role| CreateMemberRequest {
        parent: project.name.clone(),
        member: Some(Member {
            user: format!("users/{user}"),
            role: role as i32,
            ..Default::default()
        }),
    };
    let mut members = app.members();
    members
        .create_member(add("adam", Role::Admin))
        .await
        .expect("owner adds an admin");
    members
        .create_member(add("mo", Role::Member))
        .await
        .expect("owner adds a member");

    let by_member = members
        .create_member(as_user("mo", add("zed", Role::Viewer)))
        .await
        .expect_err("members do not manage members");
    assert_eq!(by_member.code(), Code::PermissionDenied);
    members
        .create_member(as_user("adam", add("zed", Role::Viewer)))
        .await
        .expect("admins do");
    let grant_owner = members
        .create_member(as_user("adam", add("oz", Role::Owner)))
        .await
        .expect_err("admins do not make owners");
    assert_eq!(grant_owner.code(), Code::PermissionDenied);
    let demote = members
        .update_member(as_user(
            "adam",
            UpdateMemberRequest {
                member: Some(Member {
                    name: format!("{}/members/ada", project.name),
                    role: Role::Viewer as i32,
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .expect_err("admins do not demote owners");
    assert_eq!(demote.code(), Code::PermissionDenied);
    let remove_owner = members
        .delete_member(as_user(
            "adam",
            DeleteMemberRequest {
                name: format!("{}/members/ada", project.name),
                etag: String::new(),
            },
        ))
        .await
        .expect_err("admins do not remove owners");
    assert_eq!(remove_owner.code(), Code::PermissionDenied);
    let delete = app
        .projects()
        .delete_project(as_user(
            "adam",
            DeleteProjectRequest {
                name: project.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .expect_err("only owners delete projects");
    assert_eq!(delete.code(), Code::PermissionDenied);
}
