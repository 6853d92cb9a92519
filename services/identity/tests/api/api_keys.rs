//! API keys: the secret is shown once and stored hashed, read keys only read, revocation works.

use taskmesh_contracts::identity_v1::{
    ApiKey, ApiKeyScope, CreateApiKeyRequest, GetCurrentUserRequest, ListApiKeysRequest,
    RevokeApiKeyRequest, UpdateProfileRequest, User,
};
use tonic::Code;

use crate::helpers::{World, api_key, bearer, code, eventually};

#[tokio::test]
async fn api_keys_are_shown_once_scoped_and_revocable() {
    let world = World::new().await;
    let token = world.signed_up("eve").await.access_token;
    let create = |scope: ApiKeyScope| {
        let mut client = world.api_keys();
        let request = bearer(
            &token,
            CreateApiKeyRequest {
                parent: "users/eve".into(),
                api_key: Some(ApiKey {
                    display_name: format!("{scope:?} key"),
                    scope: scope as i32,
                    ..Default::default()
                }),
            },
        );
        async move { client.create_api_key(request).await }
    };
    let read = create(ApiKeyScope::Read)
        .await
        .expect("read key")
        .into_inner();
    let write = create(ApiKeyScope::Write)
        .await
        .expect("write key")
        .into_inner();
    assert!(read.secret.starts_with("tmk_"));
    let listed = world
        .api_keys()
        .list_api_keys(bearer(
            &token,
            ListApiKeysRequest {
                parent: "users/eve".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.api_keys.len(), 2);
    let shown = format!("{listed:?}");
    assert!(!shown.contains(&read.secret) && !shown.contains(&write.secret));

    let me = world
        .identity()
        .get_current_user(api_key(&read.secret, GetCurrentUserRequest {}))
        .await
        .expect("a read key reads")
        .into_inner();
    assert_eq!(me.name, "users/eve");
    let as_bearer = world
        .identity()
        .get_current_user(bearer(&read.secret, GetCurrentUserRequest {}))
        .await;
    assert!(
        as_bearer.is_ok(),
        "a key also works as the bearer token: {as_bearer:?}"
    );
    let rename = |secret: &str| {
        let mut client = world.identity();
        let request = api_key(
            secret,
            UpdateProfileRequest {
                user: Some(User {
                    display_name: "Eve".into(),
                    ..Default::default()
                }),
                update_mask: None,
            },
        );
        async move { client.update_profile(request).await }
    };
    let refused = rename(&read.secret).await;
    assert_eq!(code(&refused), Code::PermissionDenied);
    assert!(rename(&write.secret).await.is_ok());

    // Not even a write key mints more keys: that takes a signed-in session.
    let minted = world
        .api_keys()
        .create_api_key(api_key(
            &write.secret,
            CreateApiKeyRequest {
                parent: "users/eve".into(),
                api_key: Some(ApiKey {
                    display_name: "more".into(),
                    scope: ApiKeyScope::Write as i32,
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect_err("keys do not mint keys");
    assert_eq!(minted.code(), Code::PermissionDenied);
    assert_eq!(crate::helpers::reason(&minted), "SESSION_REQUIRED");

    let foreign = world
        .api_keys()
        .list_api_keys(bearer(
            &token,
            ListApiKeysRequest {
                parent: "users/someone-else".into(),
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(code(&foreign), Code::PermissionDenied);

    let name = read.api_key.expect("key").name;
    world
        .api_keys()
        .revoke_api_key(bearer(&token, RevokeApiKeyRequest { name }))
        .await
        .expect("revoke");
    eventually("the revoked key refused", || async {
        let me = world
            .identity()
            .get_current_user(api_key(&read.secret, GetCurrentUserRequest {}))
            .await;
        code(&me) == Code::Unauthenticated
    })
    .await;
    let bogus = world
        .identity()
        .get_current_user(api_key("tmk_made_up", GetCurrentUserRequest {}))
        .await;
    assert_eq!(code(&bogus), Code::Unauthenticated);
}

/// Identity is asked about an API key only when it could be one: a malformed key is refused where
/// it arrives, and a well-formed unknown one is remembered as unknown for a while, so a caller
/// repeating it does not reach identity's database each time.
#[tokio::test]
async fn unknown_and_malformed_api_keys_do_not_flood_identity() {
    use taskmesh_contracts::projects_v1::ListProjectsRequest;
    use taskmesh_contracts::projects_v1::project_service_client::ProjectServiceClient;

    let world = World::new().await;
    let lookups = || async {
        let text = reqwest::get(format!("http://{}/metrics", world.identity_admin))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .filter(|l| {
                l.starts_with("taskmesh_grpc_server_handled_total")
                    && l.contains("AuthenticateApiKey")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let before = lookups().await;
    let projects = ProjectServiceClient::new(world.projects_channel.clone());
    let unknown = format!("tmk_{}", "A".repeat(43));
    for secret in [unknown.as_str(), "tmk_short", "tmk_not base64!"] {
        for _ in 0..10 {
            let refused = projects
                .clone()
                .list_projects(api_key(secret, ListProjectsRequest::default()))
                .await
                .expect_err("unknown key");
            assert_eq!(refused.code(), Code::Unauthenticated, "{secret}");
        }
    }
    assert_eq!(
        lookups().await - before,
        1.0,
        "one lookup for the well-formed key, none for the malformed ones"
    );
}
