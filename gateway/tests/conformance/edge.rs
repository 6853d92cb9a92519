//! REST/JSON at the edges: routing misses, streaming, headers, deadlines, limits, metrics, the
//! OpenAPI document and Swagger UI.

use serde_json::Value;

use crate::Harness;
use crate::rest::json_of;

#[tokio::test]
async fn unknown_routes_and_methods() {
    let h = Harness::start().await;
    let (status, body) = json_of(
        h.client
            .get(h.url("/v9/nothing"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], 5);
    let status = h
        .client
        .put(h.url("/v1/shelves/s1"))
        .send()
        .await
        .expect("put")
        .status();
    assert_eq!(status, 405);
}

#[tokio::test]
async fn server_streams_are_ndjson_or_sse_and_end_with_an_error_record() {
    let h = Harness::start().await;
    let text = h
        .client
        .get(h.url("/v1/shelves/s1/books:stream?count=3"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["result"]["name"], "shelves/s1/books/2");

    let response = h
        .client
        .get(h.url("/v1/shelves/s1/books:stream?count=5&failAfter=2&failCode=9"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("sse");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.expect("body");
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 3, "{text}");
    assert!(events[0].starts_with("event: message\ndata: {\"result\""));
    assert!(events[2].starts_with("event: error\ndata: "), "{text}");
    let error: Value =
        serde_json::from_str(events[2].split("data: ").nth(1).expect("data")).expect("json");
    assert_eq!(error["error"]["code"], 9);
}

#[tokio::test]
async fn headers_are_forwarded_generated_and_echoed() {
    let h = Harness::start().await;
    let response = h
        .client
        .get(h.url("/v1/shelves/s1"))
        .header("authorization", "Bearer token-1")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .expect("get");
    let headers = response.headers().clone();
    let generated = headers["x-request-id"].to_str().expect("id").to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok());
    assert_eq!(
        headers["grpc-metadata-seen-authorization"],
        "Bearer token-1"
    );
    assert_eq!(
        headers["grpc-metadata-seen-x-request-id"],
        generated.as_str()
    );
    assert_eq!(
        headers["grpc-metadata-seen-traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );

    let given = h
        .client
        .get(h.url("/v1/shelves/s1"))
        .header("x-request-id", "mine-42")
        .send()
        .await
        .expect("get");
    assert_eq!(given.headers()["x-request-id"], "mine-42");
    assert_eq!(
        given.headers()["grpc-metadata-seen-x-request-id"],
        "mine-42"
    );
}

#[tokio::test]
async fn grpc_timeout_becomes_the_upstream_deadline() {
    let h = Harness::start().await;
    let started = std::time::Instant::now();
    let response = h
        .client
        .get(h.url("/v1/shelves/slow"))
        .header("grpc-timeout", "200m")
        .send()
        .await
        .expect("get");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["code"], 4);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let h = Harness::with(|mut c| {
        c.max_body_bytes = 64;
        c
    })
    .await;
    let response = h
        .client
        .post(h.url("/v1/echo"))
        .body(format!("{{\"query\":\"{}\"}}", "x".repeat(100)))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let h = Harness::start().await;
    let (status, doc) = json_of(
        h.client
            .get(h.url("/openapi.json"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    // OpenAPI path templates: one parameter per variable segment, named after the collection.
    assert!(
        paths.contains_key("/v1/shelves/{shelve}/books/{book}"),
        "{:?}",
        paths.keys()
    );
    assert!(paths.contains_key("/v1/shelves/{shelve}:archive"));
    assert!(paths.keys().all(|p| !p.contains('=') && !p.contains('*')));
    let get_task = &paths["/v1/projects/{project}/tasks/{task}"]["get"]["parameters"];
    let names: Vec<&str> = get_task
        .as_array()
        .expect("parameters")
        .iter()
        .filter(|p| p["in"] == "path")
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["project", "task"],
        "named as in the contract's resource pattern"
    );
    assert!(
        paths["/v1/report"]["x-report"].is_object(),
        "a custom HTTP method is a specification extension"
    );
    assert!(
        paths["/v1/projects"]["get"].is_object(),
        "the taskmesh contracts are documented too"
    );
    let search = paths["/v1/search"]["get"]["parameters"]
        .as_array()
        .expect("params");
    assert!(
        search
            .iter()
            .any(|p| p["name"] == "kinds" && p["schema"]["type"] == "array")
    );
    assert!(doc["components"]["schemas"]["gatewaytest.v1.Book"].is_object());
}

#[tokio::test]
async fn requests_are_counted_on_the_admin_port() {
    let h = Harness::start().await;
    h.client
        .get(h.url("/v1/shelves/s1/books/b2"))
        .send()
        .await
        .expect("get");
    let metrics = h
        .client
        .get(format!("http://{}/metrics", h.admin))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(
            r#"grpc_server_handled_total{code="200",method="REST gatewaytest.v1.Library.GetBook""#
        ),
        "{metrics}"
    );
    let ready = h
        .client
        .get(format!("http://{}/readyz", h.admin))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn docs_serve_swagger_ui_over_the_openapi_document() {
    let dir = std::env::temp_dir().join(format!("swagger-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("swagger-ui-bundle.js"),
        "window.SwaggerUIBundle = function () {};",
    )
    .expect("js");
    let h = Harness::with({
        let dir = dir.clone();
        move |mut c| {
            c.swagger_ui_dir = Some(dir);
            c
        }
    })
    .await;
    let page = h.client.get(h.url("/docs")).send().await.expect("docs");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("/openapi.json") && html.contains("/docs/swagger-ui-bundle.js"));
    let js = h
        .client
        .get(h.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .expect("js");
    assert_eq!(js.status(), 200);
    assert!(js.text().await.expect("body").contains("SwaggerUIBundle"));
    for other in ["/docs/secrets.txt", "/docs/..%2F..%2Fetc%2Fpasswd"] {
        assert_eq!(
            h.client
                .get(h.url(other))
                .send()
                .await
                .expect("get")
                .status(),
            404,
            "{other}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);

    let without = Harness::start().await;
    assert_eq!(
        without
            .client
            .get(without.url("/docs"))
            .send()
            .await
            .expect("docs")
            .status(),
        404
    );
}

#[tokio::test]
async fn a_route_timeout_applies_to_its_rpc_only() {
    let h = Harness::with(|mut c| {
        c.route_timeouts_ms
            .insert("gatewaytest.v1.Library.GetShelf".into(), 200);
        c
    })
    .await;
    let started = std::time::Instant::now();
    let (status, body) = json_of(
        h.client
            .get(h.url("/v1/shelves/slow"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 504, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let (status, _) = json_of(
        h.client
            .get(h.url("/v1/shelves/s1/books/b"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 200, "other routes keep the upstream timeout");
}

/// The published document is valid OpenAPI 3.1, as `openapi-spec-validator` (PyPI, installed by
/// `make test`) judges it against the specification's schema: path templates, parameters,
/// schemas and security included.
#[tokio::test]
async fn the_openapi_document_is_valid_openapi_3_1() {
    let h = Harness::start().await;
    let document = h
        .client
        .get(h.url("/openapi.json"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    let file = std::env::temp_dir().join(format!("openapi-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, document).expect("write the document");
    let validator = taskmesh_testing::stack_home().join("venv/bin/openapi-spec-validator");
    let output = tokio::process::Command::new(&validator)
        .arg(&file)
        .output()
        .await
        .expect("openapi-spec-validator (installed by make test)");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
