//! The registration saga's compensation: when the personal organization cannot be created, the
//! registration is rolled back and the email can register again.

use taskmesh_contracts::projects_v1::{CreateOrganizationRequest, Organization};
use tonic::Code;

use crate::helpers::{PASSWORD, World, bearer, eventually};
use taskmesh_contracts::identity_v1::RegisterRequest;

#[tokio::test]
async fn a_failed_organization_step_rolls_the_registration_back() {
    let world = World::new().await;
    // Someone already owns `organizations/acme`.
    let squatter = taskmesh_testing::identity::sign(
        &world.identity.key,
        &taskmesh_testing::identity::claims("squatter"),
    );
    world
        .organizations()
        .create_organization(bearer(
            &squatter,
            CreateOrganizationRequest {
                organization_id: "acme".into(),
                organization: Some(Organization {
                    display_name: "Acme".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("squatter's organization");

    world.register("acme").await.expect("accepted, pending");
    let again = || {
        let mut client = world.identity();
        async move {
            client
                .register(RegisterRequest {
                    username: "acme-two".into(),
                    email: "acme@example.org".into(),
                    password: PASSWORD.into(),
                    display_name: String::new(),
                })
                .await
        }
    };
    // While the first registration is pending its email is taken; once the saga compensates it
    // is free again.
    eventually("the compensation", || {
        let attempt = again();
        async move {
            match attempt.await {
                Ok(_) => true,
                Err(status) => {
                    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
                    false
                }
            }
        }
    })
    .await;
    let session = world.login_as("acme@example.org").await;
    assert_eq!(
        session.user.expect("user").personal_organization,
        "organizations/acme-two"
    );
}
