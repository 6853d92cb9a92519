//! Register, login, refresh rotation with reuse detection, logout, profile and password changes.

use taskmesh_contracts::identity_v1::{
    ChangePasswordRequest, GetCurrentUserRequest, LoginRequest, LogoutRequest, RefreshRequest,
    RegisterRequest, UpdateProfileRequest, User, user,
};
use taskmesh_contracts::projects_v1::GetOrganizationRequest;
use tonic::Code;

use crate::helpers::{PASSWORD, World, bearer, code, reason, violations};

#[tokio::test]
async fn registration_completes_through_the_saga_and_login_issues_working_tokens() {
    let world = World::new().await;
    let registered = world.register("ada").await.expect("register");
    assert_eq!(registered.name, "users/ada");
    assert_eq!(registered.state, user::State::Pending as i32);

    let session = world.login("ada").await;
    assert_eq!(session.token_type, "Bearer");
    assert!(session.refresh_token.starts_with("tmr_"));
    let header = jsonwebtoken::decode_header(&session.access_token).expect("a JWT");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(world.identity.key.kid.as_str()));
    let expires = session.access_token_expire_time.expect("expiry").seconds;
    let lifetime = expires - chrono::Utc::now().timestamp();
    assert!(
        (880..=900).contains(&lifetime),
        "about 15 minutes, got {lifetime} s"
    );

    let me = world
        .identity()
        .get_current_user(bearer(&session.access_token, GetCurrentUserRequest {}))
        .await
        .expect("me")
        .into_inner();
    assert_eq!(me.state, user::State::Active as i32);
    assert_eq!(me.personal_organization, "organizations/ada");
    let organization = world
        .organizations()
        .get_organization(bearer(
            &session.access_token,
            GetOrganizationRequest {
                name: "organizations/ada".into(),
            },
        ))
        .await
        .expect("the personal organization")
        .into_inner();
    assert_eq!(organization.owner, "users/ada");

    let again = world.register("ada").await.expect_err("taken");
    assert_eq!(again.code(), Code::AlreadyExists);
    let wrong = world
        .identity()
        .login(LoginRequest {
            email: "ada@example.org".into(),
            password: "not the password".into(),
        })
        .await
        .expect_err("wrong password");
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let unknown = world
        .identity()
        .login(LoginRequest {
            email: "nobody@example.org".into(),
            password: PASSWORD.into(),
        })
        .await
        .expect_err("unknown email");
    assert_eq!(unknown.code(), Code::Unauthenticated);
    assert_eq!(
        unknown.message(),
        wrong.message(),
        "no hint which emails exist"
    );

    let no_token = world
        .identity()
        .get_current_user(GetCurrentUserRequest {})
        .await;
    assert_eq!(code(&no_token), Code::Unauthenticated);
}

#[tokio::test]
async fn bad_registrations_name_every_field() {
    let world = World::new().await;
    let err = world
        .identity()
        .register(RegisterRequest {
            username: "A".into(),
            email: "not-an-email".into(),
            password: "short".into(),
            display_name: String::new(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), vec!["username", "email", "password"]);
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_whole_family() {
    let world = World::new().await;
    let first = world.signed_up("bob").await;
    let other_login = world.login("bob").await;

    let second = world
        .identity()
        .refresh(RefreshRequest {
            refresh_token: first.refresh_token.clone(),
        })
        .await
        .expect("rotate")
        .into_inner();
    assert_ne!(second.refresh_token, first.refresh_token);

    let reused = world
        .identity()
        .refresh(RefreshRequest {
            refresh_token: first.refresh_token.clone(),
        })
        .await
        .expect_err("reuse");
    assert_eq!(reused.code(), Code::Unauthenticated);
    assert_eq!(reason(&reused), "REFRESH_TOKEN_REUSED");
    let descendant = world
        .identity()
        .refresh(RefreshRequest {
            refresh_token: second.refresh_token,
        })
        .await
        .expect_err("the family is revoked");
    assert_eq!(descendant.code(), Code::Unauthenticated);

    // Another login is another family.
    let unaffected = world
        .identity()
        .refresh(RefreshRequest {
            refresh_token: other_login.refresh_token.clone(),
        })
        .await
        .expect("other family")
        .into_inner();
    world
        .identity()
        .logout(LogoutRequest {
            refresh_token: unaffected.refresh_token.clone(),
        })
        .await
        .expect("logout");
    let after_logout = world
        .identity()
        .refresh(RefreshRequest {
            refresh_token: unaffected.refresh_token,
        })
        .await;
    assert_eq!(code(&after_logout), Code::Unauthenticated);
}

#[tokio::test]
async fn profile_and_password_changes() {
    let world = World::new().await;
    let session = world.signed_up("cyd").await;
    let token = session.access_token.clone();
    let updated = world
        .identity()
        .update_profile(bearer(
            &token,
            UpdateProfileRequest {
                user: Some(User {
                    display_name: "Cy Young".into(),
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.display_name, "Cy Young");
    let stale = world
        .identity()
        .update_profile(bearer(
            &token,
            UpdateProfileRequest {
                user: Some(User {
                    display_name: "Cy".into(),
                    etag: "v1".into(),
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);

    let wrong = world
        .identity()
        .change_password(bearer(
            &token,
            ChangePasswordRequest {
                current_password: "not it at all".into(),
                new_password: "a brand new password".into(),
            },
        ))
        .await
        .expect_err("wrong current password");
    assert_eq!(wrong.code(), Code::PermissionDenied);
    world
        .identity()
        .change_password(bearer(
            &token,
            ChangePasswordRequest {
                current_password: PASSWORD.into(),
                new_password: "a brand new password".into(),
            },
        ))
        .await
        .expect("change");
    let old_refresh = world
        .identity()
        .refresh(RefreshRequest {
            refresh_token: session.refresh_token,
        })
        .await;
    assert_eq!(code(&old_refresh), Code::Unauthenticated, "sessions end");
    let login = world
        .identity()
        .login(LoginRequest {
            email: "cyd@example.org".into(),
            password: "a brand new password".into(),
        })
        .await;
    assert!(login.is_ok(), "{login:?}");
}

/// Ten wrong passwords for one account close it to sign-ins for the rest of the window, even with
/// the right password and whoever asks; another account signs in as usual.
#[tokio::test]
async fn an_account_guessed_at_is_closed_to_sign_ins_for_a_while() {
    let world = World::new().await;
    world.signed_up("ada").await;
    world.signed_up("bob").await;
    let wrong = || LoginRequest {
        email: "ada@example.org".into(),
        password: "not the password".into(),
    };
    for _ in 0..10 {
        let refused = world.identity().login(wrong()).await.expect_err("wrong");
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
    let closed = world
        .identity()
        .login(LoginRequest {
            email: "ADA@example.org".into(),
            password: PASSWORD.into(),
        })
        .await
        .expect_err("closed for a while");
    assert_eq!(closed.code(), Code::ResourceExhausted);
    let retry = {
        use tonic_types::StatusExt;
        closed.get_error_details().retry_info().cloned()
    };
    assert!(
        retry
            .and_then(|r| r.retry_delay)
            .is_some_and(|d| d.as_secs() > 60),
        "{closed:?}"
    );
    world.login("bob").await;
}
