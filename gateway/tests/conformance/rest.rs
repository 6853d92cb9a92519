//! REST/JSON: every rule form, query parameters, bodies, HttpBody, errors, streaming, headers,
//! limits and the OpenAPI document.

use serde_json::{Value, json};

use crate::Harness;

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn a_patterned_variable_binds_several_segments() {
    let h = Harness::start().await;
    let (status, body) = json_of(
        h.client
            .get(h.url("/v1/shelves/s1/books/b2"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"name": "shelves/s1/books/b2", "title": "The Book", "pages": "300"})
    );
}

#[tokio::test]
async fn additional_bindings_route_to_the_same_rpc() {
    let h = Harness::start().await;
    let (status, body) = json_of(
        h.client
            .get(h.url("/v2/shelves/s1/books/b2"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "shelves/s1/books/b2");
}

#[tokio::test]
async fn a_simple_variable_and_a_query_parameter() {
    let h = Harness::start().await;
    let (status, body) = json_of(
        h.client
            .get(h.url("/v1/shelves/s9?withBooks=true"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"name": "shelves/s9", "note": "with books"}));
    let (_, snake) = json_of(
        h.client
            .get(h.url("/v1/shelves/s9?with_books=true"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(snake["note"], "with books", "proto names are accepted too");
}

#[tokio::test]
async fn a_body_field_and_a_path_variable_build_the_request() {
    let h = Harness::start().await;
    let response = h
        .client
        .post(h.url("/v1/shelves/s1/books"))
        .json(&json!({"title": "New", "kind": "KIND_POEM", "publishTime": "2026-01-02T03:04:05Z"}))
        .send()
        .await
        .expect("post");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"name": "shelves/s1/books/new", "title": "New", "kind": "KIND_POEM", "publishTime": "2026-01-02T03:04:05Z"})
    );
}

#[tokio::test]
async fn a_nested_path_variable_and_a_field_mask_query() {
    let h = Harness::start().await;
    let response = h
        .client
        .patch(h.url("/v1/shelves/s1/books/b1?updateMask=title,author.displayName"))
        .json(&json!({"title": "Renamed"}))
        .send()
        .await
        .expect("patch");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "shelves/s1/books/b1");
    assert_eq!(body["title"], "Renamed");
    assert_eq!(body["tags"], json!(["title", "author.display_name"]));
}

#[tokio::test]
async fn a_custom_method_verb_with_the_whole_body() {
    let h = Harness::start().await;
    let response = h
        .client
        .post(h.url("/v1/shelves/s1:archive"))
        .json(&json!({"note": "old"}))
        .send()
        .await
        .expect("post");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"name": "shelves/s1", "archived": true, "note": "old"})
    );
}

#[tokio::test]
async fn query_parameters_cover_dotted_paths_repeats_enums_and_well_known_types() {
    let h = Harness::start().await;
    let query = "query=a+b&tags=x&tags=y&kind=KIND_POEM&after=2026-01-01T00:00:00Z&within=3.5s\
                 &fields=title,author.age&author.display_name=Ann%20Lee&author.age=40&limit=7\
                 &exact=true&score=1.5&token=AQI%3D&kinds=KIND_NOVEL&kinds=2&path=a%2Fb";
    let (status, body) = json_of(
        h.client
            .get(h.url(&format!("/v1/search?{query}")))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "query": "a b",
            "tags": ["x", "y"],
            "kind": "KIND_POEM",
            "after": "2026-01-01T00:00:00Z",
            "within": "3.500s",
            "fields": "title,author.age",
            "author": {"displayName": "Ann Lee", "age": 40},
            "limit": 7,
            "exact": true,
            "score": 1.5,
            "token": "AQI=",
            "kinds": ["KIND_NOVEL", "KIND_POEM"],
            "path": "a/b"
        })
    );
}

#[tokio::test]
async fn the_whole_body_accepts_both_field_spellings() {
    let h = Harness::start().await;
    let response = h
        .client
        .post(h.url("/v1/echo"))
        .json(&json!({"query": "q", "author": {"display_name": "snake"}, "exact": true}))
        .send()
        .await
        .expect("post");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"query": "q", "author": {"displayName": "snake"}, "exact": true})
    );
}

#[tokio::test]
async fn a_custom_http_method_is_routed() {
    let h = Harness::start().await;
    let method = reqwest::Method::from_bytes(b"REPORT").expect("method");
    let response = h
        .client
        .request(method, h.url("/v1/report"))
        .json(&json!({"query": "q"}))
        .send()
        .await
        .expect("report");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200);
    assert_eq!(body["query"], "report:q");
}

#[tokio::test]
async fn anonymous_and_deep_wildcards_match() {
    let h = Harness::start().await;
    let (status, body) = json_of(
        h.client
            .get(h.url("/v1/anon/anything/echo?query=w"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["query"], "w");

    let response = h
        .client
        .get(h.url("/v1/files/a/b/c.txt"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.text().await.expect("body"), "file:a/b/c.txt");
}

#[tokio::test]
async fn an_http_body_request_passes_raw_bytes_with_its_content_type() {
    let h = Harness::start().await;
    let bytes = vec![0_u8, 1, 2, 3, 255];
    let response = h
        .client
        .post(h.url("/v1/uploads/u1"))
        .header("content-type", "image/png")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"id": "u1", "contentType": "image/png", "size": "5"})
    );
}

#[tokio::test]
async fn response_body_returns_one_field() {
    let h = Harness::start().await;
    let (status, body) = json_of(
        h.client
            .get(h.url("/v1/shelves/s/books/b:wrapped"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"name": "shelves/s/books/b", "title": "Wrapped"})
    );
}

#[tokio::test]
async fn delete_returns_an_empty_object() {
    let h = Harness::start().await;
    let (status, body) = json_of(
        h.client
            .delete(h.url("/v1/shelves/s/books/b"))
            .send()
            .await
            .expect("delete"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({}));
}

#[tokio::test]
async fn bad_json_unknown_fields_and_unknown_parameters_are_400_with_a_status_body() {
    let h = Harness::start().await;
    for (request, field) in [
        (h.client.post(h.url("/v1/echo")).body("{not json"), "body"),
        (
            h.client.post(h.url("/v1/echo")).json(&json!({"nope": 1})),
            "body",
        ),
        (
            h.client.post(h.url("/v1/echo")).json(&json!([1, 2])),
            "body",
        ),
        (h.client.get(h.url("/v1/search?colour=red")), "colour"),
        (h.client.get(h.url("/v1/search?exact=maybe")), "exact"),
        (h.client.get(h.url("/v1/search?kind=KIND_PURPLE")), "body"),
    ] {
        let (status, body) = json_of(request.send().await.expect("send")).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], 3);
        assert_eq!(
            body["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest",
            "{body}"
        );
        assert_eq!(
            body["details"][0]["fieldViolations"][0]["field"], field,
            "{body}"
        );
    }
}

#[tokio::test]
async fn grpc_codes_map_to_http_statuses_with_decoded_details() {
    let h = Harness::start().await;
    for (code, http) in [
        (3, 400),
        (5, 404),
        (6, 409),
        (10, 409),
        (7, 403),
        (16, 401),
        (8, 429),
        (9, 400),
        (12, 501),
        (14, 503),
        (4, 504),
        (13, 500),
        (2, 500),
    ] {
        let response = h
            .client
            .post(h.url("/v1/fail"))
            .json(&json!({"code": code, "message": "boom", "reason": "SOME_REASON", "field": "f"}))
            .send()
            .await
            .expect("fail");
        let (status, body) = json_of(response).await;
        assert_eq!(status, http, "code {code}: {body}");
        assert_eq!(body["code"], code);
        assert_eq!(body["message"], "boom");
        let types: Vec<&str> = body["details"]
            .as_array()
            .expect("details")
            .iter()
            .filter_map(|d| d["@type"].as_str())
            .collect();
        assert!(
            types.contains(&"type.googleapis.com/google.rpc.ErrorInfo"),
            "{body}"
        );
        assert!(
            types.contains(&"type.googleapis.com/google.rpc.BadRequest"),
            "{body}"
        );
    }
    let (status, body) = json_of(
        h.client
            .get(h.url("/v1/shelves/s/books/missing"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["details"][0]["reason"], "RESOURCE_NOT_FOUND");
}

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
    assert!(paths.contains_key("/v1/{name=shelves/*/books/*}"));
    assert!(paths.contains_key("/v1/{name=shelves/*}:archive"));
    assert!(paths["/v1/report"]["report"].is_object());
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
