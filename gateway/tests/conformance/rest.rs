//! REST/JSON: every rule form, query parameters, bodies and HttpBody.

use serde_json::{Value, json};

use crate::Harness;

pub(crate) async fn json_of(response: reqwest::Response) -> (u16, Value) {
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
