//! The registration saga: a name someone else took first cannot block a registration (the personal
//! organization falls back to the first free `<username>-<n>`), and a registration whose saga does
//! not finish in time is cancelled, freeing the username and email, with a personal organization
//! created late removed again.

use std::time::Duration;

use taskmesh_contracts::identity_v1::RegisterRequest;
use taskmesh_contracts::projects_v1::{
    CreateOrganizationRequest, GetOrganizationRequest, Organization,
};
use tonic::Code;

use crate::helpers::{PASSWORD, World, bearer, eventually, reason};

#[tokio::test]
async fn a_name_taken_first_cannot_block_a_registration() {
    let world = World::new().await;
    let squatter = taskmesh_testing::identity::sign(
        &world.identity.key,
        &taskmesh_testing::identity::claims("squatter"),
    );
    // Someone takes `organizations/acme` and, elsewhere, the display name `bob` before either
    // person registers.
    for (id, display_name) in [("acme", "Acme"), ("bobs-things", "bob")] {
        world
            .organizations()
            .create_organization(bearer(
                &squatter,
                CreateOrganizationRequest {
                    organization_id: id.into(),
                    organization: Some(Organization {
                        display_name: display_name.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ))
            .await
            .expect("squatter's organization");
    }

    for (user, personal) in [
        ("acme", "organizations/acme-2"),
        ("bob", "organizations/bob-2"),
    ] {
        let session = world.signed_up(user).await;
        let user = session.user.expect("user");
        assert_eq!(user.personal_organization, personal);
        let owned = world
            .organizations()
            .get_organization(bearer(
                &session.access_token,
                GetOrganizationRequest {
                    name: personal.into(),
                },
            ))
            .await
            .expect("the personal organization is theirs")
            .into_inner();
        assert_eq!(owned.name, personal);
    }
}

#[tokio::test]
async fn a_registration_that_does_not_finish_in_time_is_cancelled_and_compensated() {
    let mut world =
        World::without_projects(|l| l.set("identity.registration_timeout_secs", 2)).await;
    world.register("late").await.expect("accepted, pending");
    let login = || {
        let mut client = world.identity();
        async move {
            client
                .login(taskmesh_contracts::identity_v1::LoginRequest {
                    email: "late@example.org".into(),
                    password: PASSWORD.into(),
                })
                .await
        }
    };
    let pending = login().await.expect_err("pending");
    assert_eq!(reason(&pending), "REGISTRATION_PENDING");

    // Nobody creates the organization: after 2 s the registration is cancelled.
    let mut cancelled = false;
    for _ in 0..100 {
        let attempt = login().await.expect_err("never active");
        if reason(&attempt) != "REGISTRATION_PENDING" {
            assert_eq!(attempt.code(), Code::Unauthenticated, "{attempt:?}");
            cancelled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cancelled, "the registration stayed pending");

    // Projects comes back and works through the backlog in order: it creates the organization
    // of the cancelled registration late, then removes it on RegistrationCancelled, so the next
    // registration of the same name gets `organizations/late` itself (without the removal it
    // would find the old one and never complete).
    world.start_projects().await;

    // The username and email are free again, and the saga completes this time.
    eventually("the second registration", || {
        let mut client = world.identity();
        async move {
            client
                .register(RegisterRequest {
                    username: "late".into(),
                    email: "late@example.org".into(),
                    password: PASSWORD.into(),
                    display_name: String::new(),
                })
                .await
                .is_ok()
        }
    })
    .await;
    let session = world.login("late").await;
    assert_eq!(
        session.user.expect("user").personal_organization,
        "organizations/late"
    );
    let mut projects = world.projects_db.connect(&world.stack).await;
    let removed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM mesh_outbox WHERE event_type = 'taskmesh.projects.v1.OrganizationDeleted' \
         AND resource = 'organizations/late'",
    )
    .fetch_one(&mut projects)
    .await
    .expect("outbox");
    assert_eq!(removed, 1, "the late organization was removed once");
    let personal: i64 =
        sqlx::query_scalar("SELECT count(*) FROM organizations WHERE personal_of = 'late'")
            .fetch_one(&mut projects)
            .await
            .expect("organizations");
    assert_eq!(personal, 1, "the second registration's organization");
}
