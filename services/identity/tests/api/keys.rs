//! Signing key rotation: a rotated-out key keeps verifying its tokens until it is retired.

use taskmesh_contracts::identity_v1::{GetCurrentUserRequest, GetJwksRequest};
use taskmesh_identity::keys;
use tonic::Code;

use crate::helpers::{World, bearer, code, eventually};

#[tokio::test]
async fn tokens_of_a_rotated_out_key_verify_until_the_key_is_retired() {
    let world = World::new().await;
    let old = world.signed_up("dee").await.access_token;
    let old_kid = world.identity.key.kid.clone();
    let vault = world.stack.vault();
    let path = format!("{}/{}", world.identity.db.secret_path, keys::SECRET_NAME);

    let new_kid = keys::rotate(&vault, "secret", &path).await.expect("rotate");
    eventually("the new key signing", || async {
        let token = world.login("dee").await.access_token;
        jsonwebtoken::decode_header(&token)
            .ok()
            .and_then(|h| h.kid)
            .as_deref()
            == Some(new_kid.as_str())
    })
    .await;
    let new = world.login("dee").await.access_token;
    let jwks = world
        .identity()
        .get_jwks(GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner();
    let kids: Vec<_> = jwks.keys.iter().map(|k| k.kid.clone()).collect();
    assert!(
        kids.contains(&old_kid) && kids.contains(&new_kid),
        "{kids:?}"
    );
    for token in [&old, &new] {
        let me = world
            .identity()
            .get_current_user(bearer(token, GetCurrentUserRequest {}))
            .await;
        assert!(
            me.is_ok(),
            "both keys verify while both are published: {me:?}"
        );
    }

    keys::retire(&vault, "secret", &path, &old_kid)
        .await
        .expect("retire");
    eventually("the retired key refused", || async {
        let me = world
            .identity()
            .get_current_user(bearer(&old, GetCurrentUserRequest {}))
            .await;
        code(&me) == Code::Unauthenticated
    })
    .await;
    let me = world
        .identity()
        .get_current_user(bearer(&new, GetCurrentUserRequest {}))
        .await;
    assert!(me.is_ok(), "the new key still verifies: {me:?}");
    let active = keys::retire(&vault, "secret", &path, &new_kid).await;
    assert!(active.is_err(), "the signing key cannot be retired");
}

#[tokio::test]
async fn a_token_verified_once_is_still_refused_after_it_expires() {
    let world = World::new().await;
    world.signed_up("fay").await;
    let mut claims = taskmesh_testing::identity::claims("fay");
    claims.exp = chrono::Utc::now().timestamp() + 1;
    let short = taskmesh_testing::identity::sign(&world.identity.key, &claims);
    let me = world
        .identity()
        .get_current_user(bearer(&short, GetCurrentUserRequest {}))
        .await;
    assert!(me.is_ok(), "valid for a second: {me:?}");
    // Past `exp` plus the 5 s leeway the remembered verification no longer counts.
    let mut refused = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let me = world
            .identity()
            .get_current_user(bearer(&short, GetCurrentUserRequest {}))
            .await;
        if code(&me) == Code::Unauthenticated {
            refused = true;
            break;
        }
    }
    assert!(
        refused,
        "an expired token must be refused even when it verified before"
    );
}
