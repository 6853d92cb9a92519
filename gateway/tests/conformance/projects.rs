//! The gateway in front of the real projects service (against the local stack): REST create, get,
//! list, update and delete of projects, with 404, 400 and 409 as `google.rpc.Status` bodies.

use serde_json::{Value, json};
use taskmesh_gateway::upstream::UpstreamConfig;
use taskmesh_gateway::{Gateway, GatewayConfig};
use taskmesh_testing::{Stack, TestDatabase};

async fn projects_behind_a_gateway() -> (String, reqwest::Client, tokio::sync::oneshot::Sender<()>)
{
    let (base, _grpc, client, stop) = behind_a_gateway(|c| c).await;
    (base, client, stop)
}

/// The projects service and the test process's identity service behind a gateway that verifies
/// credentials; returns the REST base URL and the native gRPC address.
pub(crate) async fn behind_a_gateway(
    customize: impl FnOnce(GatewayConfig) -> GatewayConfig,
) -> (
    String,
    std::net::SocketAddr,
    reqwest::Client,
    tokio::sync::oneshot::Sender<()>,
) {
    let stack = Stack::load();
    let db = TestDatabase::create(&stack, "gateway_test").await;
    let layers = taskmesh_testing::with_identity(db.app_layers(
        taskmesh_projects::Config::default_layers(),
        &stack,
        &stack.nats_url,
    ));
    let config = taskmesh_projects::Config::from_layers(&layers).expect("config");
    let app = taskmesh_projects::App::build(config)
        .await
        .expect("projects");
    let upstream = app.grpc_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (stop_gateway, gateway_stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let identity = taskmesh_testing::identity::identity();
    let gateway = Gateway::build(
        customize(GatewayConfig {
            http_listen: any,
            grpc_listen: any,
            admin_listen: any,
            upstreams: vec![
                UpstreamConfig {
                    prefix: "taskmesh.projects".into(),
                    endpoint: format!("http://{upstream}"),
                    timeout_ms: 10_000,
                },
                UpstreamConfig {
                    prefix: "taskmesh.identity".into(),
                    endpoint: identity.endpoint.clone(),
                    timeout_ms: 10_000,
                },
            ],
            auth: taskmesh_mesh::auth::AuthConfig {
                identity_endpoint: identity.endpoint.clone(),
                ..Default::default()
            },
            ..GatewayConfig::default()
        }),
        &[],
    )
    .await
    .expect("gateway");
    let base = format!("http://{}", gateway.http_addr());
    let grpc = gateway.grpc_addr();
    tokio::spawn(gateway.run(async move {
        let _ = gateway_stopped.await;
        let _ = stop.send(());
    }));
    (base, grpc, reqwest::Client::new(), stop_gateway)
}

async fn call(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request
        .header(
            "authorization",
            format!("Bearer {}", taskmesh_testing::identity::token("ada")),
        )
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    let text = response.text().await.expect("text");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn projects_are_managed_over_rest_with_status_bodies_for_errors() {
    let (base, client, _stop) = projects_behind_a_gateway().await;

    let (status, created) = call(
        client
            .post(format!("{base}/v1/projects"))
            .json(&json!({"displayName": "Over REST"})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let name = created["name"].as_str().expect("name").to_owned();
    assert_eq!(created["creator"], "users/ada");

    let (status, fetched) = call(client.get(format!("{base}/v1/{name}"))).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, created);

    let (status, listed) = call(client.get(format!(
        "{base}/v1/projects?pageSize=10&filter=display_name%3D%22Over%20REST%22"
    )))
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed["projects"], json!([created.clone()]));

    let (status, updated) = call(
        client
            .patch(format!("{base}/v1/{name}?updateMask=description"))
            .json(&json!({"description": "changed", "etag": created["etag"]})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["description"], "changed");

    let (status, stale) = call(
        client
            .patch(format!("{base}/v1/{name}?updateMask=description"))
            .json(&json!({"description": "lost", "etag": created["etag"]})),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(stale["code"], 10);
    assert_eq!(stale["details"][0]["reason"], "ETAG_MISMATCH");

    // A project the caller is no member of, missing or not, is refused before any lookup.
    let (status, foreign) = call(client.get(format!("{base}/v1/projects/absent"))).await;
    assert_eq!(status, 403);
    assert_eq!(foreign["code"], 7);
    let (status, missing) = call(client.get(format!("{base}/v1/{name}/boards/absent"))).await;
    assert_eq!(status, 404);
    assert_eq!(missing["code"], 5);
    assert_eq!(
        missing["details"][0]["@type"],
        "type.googleapis.com/google.rpc.ErrorInfo"
    );

    let (status, bad) = call(client.post(format!("{base}/v1/projects")).body("{oops")).await;
    assert_eq!(status, 400);
    assert_eq!(bad["code"], 3);

    // Every broken field at once, named as the REST request names it: the body's own fields
    // (the body is the project) and the query parameters, in JSON spelling.
    let (status, invalid) = call(
        client
            .post(format!(
                "{base}/v1/projects?projectId=Not_An_Id&requestId=nope"
            ))
            .json(&json!({"displayName": "", "description": "d".repeat(1025)})),
    )
    .await;
    assert_eq!(status, 400, "{invalid}");
    assert_eq!(invalid["code"], 3);
    assert_eq!(
        invalid["details"][0]["@type"],
        "type.googleapis.com/google.rpc.BadRequest"
    );
    let mut fields: Vec<&str> = invalid["details"][0]["fieldViolations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter_map(|v| v["field"].as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["description", "displayName", "projectId", "requestId"],
        "{invalid}"
    );
    assert!(
        invalid["message"]
            .as_str()
            .is_some_and(|m| m.contains("displayName: is required")),
        "{invalid}"
    );

    let (status, deleted) = call(client.delete(format!("{base}/v1/{name}"))).await;
    assert_eq!(status, 200);
    assert!(deleted["deleteTime"].is_string());
    let (status, _) = call(
        client
            .post(format!("{base}/v1/{name}:undelete"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 200);
}
