//! The gateway verifies credentials itself (REST and native gRPC), throttles sign-in attempts per
//! client address, and publishes the OIDC discovery document and the JWKS.

use serde_json::Value;
use taskmesh_contracts::projects_v1::ListProjectsRequest;
use taskmesh_contracts::projects_v1::project_service_client::ProjectServiceClient;
use taskmesh_gateway::guard::RateLimits;
use taskmesh_testing::identity::{self, claims, expired_token, foreign_key, sign, token};
use tonic::Code;

use crate::projects::behind_a_gateway;

async fn get(client: &reqwest::Client, url: String, bearer: Option<&str>) -> (u16, Value) {
    let mut request = client.get(url);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn missing_malformed_expired_and_foreign_tokens_are_refused_at_the_edge() {
    let (base, grpc, client, _stop) = behind_a_gateway(|c| c).await;
    let url = format!("{base}/v1/projects");
    let foreign = sign(&foreign_key(), &claims("ada"));
    let expired = expired_token("ada");
    for (what, bearer) in [
        ("no token", None),
        ("malformed", Some("not.a.jwt")),
        ("expired", Some(expired.as_str())),
        ("foreign key", Some(foreign.as_str())),
    ] {
        let (status, body) = get(&client, url.clone(), bearer).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["code"], 16, "{what}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains("not.a.jwt"),
            "{what}: the token is echoed: {message}"
        );
    }
    let (status, body) = get(&client, url, Some(&token("ada"))).await;
    assert_eq!(status, 200, "{body}");

    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let refused = ProjectServiceClient::new(channel.clone())
        .list_projects(ListProjectsRequest::default())
        .await
        .expect_err("no token over gRPC");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let listed = ProjectServiceClient::new(channel)
        .list_projects(taskmesh_testing::as_user(
            "ada",
            ListProjectsRequest::default(),
        ))
        .await;
    assert!(listed.is_ok(), "{listed:?}");
}

#[tokio::test]
async fn repeated_logins_from_one_address_are_throttled_with_retry_after() {
    let (base, _grpc, client, _stop) = behind_a_gateway(|mut c| {
        c.rate_limits = RateLimits {
            sign_in_per_minute: 1,
            sign_in_burst: 3,
            ..RateLimits::default()
        };
        c
    })
    .await;
    let attempt = || {
        client
            .post(format!("{base}/v1/sessions:login"))
            .json(&serde_json::json!({"email": "nobody@example.org", "password": "guess guess guess"}))
            .send()
    };
    for n in 0..3 {
        let response = attempt().await.expect("send");
        assert_eq!(
            response.status().as_u16(),
            401,
            "attempt {n} reaches identity"
        );
    }
    let throttled = attempt().await.expect("send");
    assert_eq!(throttled.status().as_u16(), 429);
    let retry_after: u64 = throttled
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = throttled.json().await.expect("json");
    assert_eq!(body["code"], 8);
}

#[tokio::test]
async fn discovery_and_jwks_are_published_for_token_validators() {
    let (base, _grpc, client, _stop) = behind_a_gateway(|mut c| {
        c.public_url = "https://api.example.test/".to_owned();
        c
    })
    .await;
    // The endpoints are named under the configured URL, whatever Host the client sends.
    let discovery: Value = client
        .get(format!("{base}/.well-known/openid-configuration"))
        .header("host", "attacker.example")
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(discovery["issuer"], "taskmesh");
    assert_eq!(
        discovery["jwks_uri"],
        "https://api.example.test/.well-known/jwks.json"
    );
    assert_eq!(
        discovery["token_endpoint"],
        "https://api.example.test/v1/sessions:login"
    );
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"][0],
        "EdDSA"
    );
    let (status, jwks) = get(&client, format!("{base}/.well-known/jwks.json"), None).await;
    assert_eq!(status, 200);
    let keys = jwks["keys"].as_array().expect("keys");
    let kid = &identity::identity().key.kid;
    let key = keys
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the signing key");
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert!(key.get("d").is_none(), "no private part");
}

#[tokio::test]
async fn each_user_is_limited_on_every_call_and_others_are_not() {
    let (base, grpc, client, _stop) = behind_a_gateway(|mut c| {
        c.rate_limits = RateLimits {
            user_per_second: 1,
            user_burst: 2,
            ..RateLimits::default()
        };
        c
    })
    .await;
    let url = format!("{base}/v1/projects");
    let ada = token("ada");
    for _ in 0..2 {
        let (status, body) = get(&client, url.clone(), Some(&ada)).await;
        assert_eq!(status, 200, "{body}");
    }
    let response = client
        .get(url.clone())
        .bearer_auth(&ada)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let (status, _) = get(&client, url, Some(&token("bob"))).await;
    assert_eq!(status, 200, "another user has a bucket of its own");

    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let limited = ProjectServiceClient::new(channel)
        .list_projects(taskmesh_testing::as_user(
            "ada",
            ListProjectsRequest::default(),
        ))
        .await
        .expect_err("ada is still over her limit over gRPC");
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert!(limited.metadata().get("retry-after").is_some());
}

/// AuthenticateApiKey is for services: the gateway has no REST route for it, leaves it out of the
/// OpenAPI document and refuses it over native gRPC and grpc-web, so nobody outside the mesh can
/// probe API keys through it.
#[tokio::test]
async fn the_internal_api_key_rpc_is_not_reachable_from_outside() {
    use taskmesh_contracts::identity_v1::AuthenticateApiKeyRequest;
    use taskmesh_contracts::identity_v1::api_key_service_client::ApiKeyServiceClient;

    let (base, grpc, client, _stop) = behind_a_gateway(|c| c).await;
    let response = client
        .post(format!("{base}/v1/apiKeys:authenticate"))
        .json(&serde_json::json!({"secret": "tmk_guess"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
    let (status, document) = get(&client, format!("{base}/openapi.json"), None).await;
    assert_eq!(status, 200);
    assert!(
        document["paths"].get("/v1/apiKeys:authenticate").is_none(),
        "not documented"
    );

    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    for bearer in [None, Some(token("ada"))] {
        let mut request = tonic::Request::new(AuthenticateApiKeyRequest {
            secret: "tmk_guess".into(),
        });
        if let Some(bearer) = &bearer {
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {bearer}").parse().expect("ascii"),
            );
        }
        let refused = ApiKeyServiceClient::new(channel.clone())
            .authenticate_api_key(request)
            .await
            .expect_err("internal");
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }
}
