//! The REST/JSON side of the gateway: route, transcode, call upstream, render. Errors are
//! `google.rpc.Status` JSON with the HTTP status of their gRPC code. Server-streaming RPCs answer
//! newline-delimited JSON, or Server-Sent Events when the client accepts `text/event-stream`.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use prost_reflect::DescriptorPool;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::routes::{Binding, Lookup, RouteTable};
use crate::transcode::{self, status_json};
use crate::upstream::{self, Upstreams};

/// Request headers forwarded to upstreams as metadata.
const FORWARDED: &[&str] = &[
    "authorization",
    "x-request-id",
    "x-correlation-id",
    "traceparent",
    "tracestate",
    "x-api-key",
];

/// What the REST handler needs.
#[derive(Debug)]
pub struct RestState {
    /// Routes from the descriptors.
    pub routes: RouteTable,
    /// Descriptors, to render error details.
    pub pool: DescriptorPool,
    /// Upstream channels.
    pub upstreams: Upstreams,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Largest streamed upload.
    pub max_upload_bytes: u64,
    /// Where request counts and latencies go.
    pub metrics: taskmesh_mesh::Metrics,
    /// Per-RPC timeouts that replace the upstream's.
    pub route_timeouts: std::collections::BTreeMap<String, std::time::Duration>,
    /// Authentication and rate limits.
    pub guard: Arc<crate::guard::EdgeGuard>,
}

/// Handles one REST request.
pub async fn handle(state: Arc<RestState>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let started = std::time::Instant::now();
    let lookup = state.routes.lookup(&parts.method, parts.uri.path());
    let route = match &lookup {
        Lookup::Found(binding, _) => format!("REST {}", binding.method.full_name()),
        _ => "REST (no route)".to_owned(),
    };
    let mut response = serve(&state, &parts, body, &request_id, lookup).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    state
        .metrics
        .grpc_handled
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .inc();
    state
        .metrics
        .grpc_latency
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    tracing::info!(
        method = %parts.method,
        path = parts.uri.path(),
        status = response.status().as_u16(),
        request_id = %request_id,
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request finished"
    );
    response
}

async fn serve(
    state: &RestState,
    parts: &http::request::Parts,
    body: Body,
    request_id: &str,
    lookup: Lookup<'_>,
) -> Response<Body> {
    let path = parts.uri.path();
    let (binding, variables) = match lookup {
        Lookup::Found(binding, variables) => (binding, variables),
        Lookup::MethodNotAllowed(allowed) => {
            let mut response = error(
                state,
                &tonic::Status::unimplemented(format!("{} is not allowed on {path}", parts.method)),
                Some(StatusCode::METHOD_NOT_ALLOWED),
            );
            let allow = allowed
                .iter()
                .map(http::Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            return response;
        }
        Lookup::NotFound => {
            return error(
                state,
                &tonic::Status::not_found(format!("no route for {} {path}", parts.method)),
                None,
            );
        }
    };
    let rpc = format!(
        "/{}/{}",
        binding.method.parent_service().full_name(),
        binding.method.name()
    );
    let ip = crate::guard::client_ip(&parts.extensions);
    if let Err(refusal) = state.guard.check(&rpc, &parts.headers, ip).await {
        let mut response = error(state, &refusal.status, None);
        refusal.set_retry_after(response.headers_mut());
        return response;
    }
    let service = binding.method.parent_service().full_name().to_owned();
    let Some(upstream) = state.upstreams.for_service(&service) else {
        return error(
            state,
            &tonic::Status::unimplemented(format!("no upstream serves {service}")),
            None,
        );
    };
    let metadata = forward_metadata(&parts.headers, request_id);
    let client_timeout = parts
        .headers
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(taskmesh_mesh::layer::parse_grpc_timeout);
    // The route's own timeout, else the upstream's; a shorter client deadline wins.
    let route = state
        .route_timeouts
        .get(binding.method.full_name())
        .copied()
        .unwrap_or(upstream.timeout);
    let timeout = Some(client_timeout.map_or(route, |t| t.min(route)));

    if crate::files::is_upload(binding) {
        return upload(
            state, binding, parts, &variables, body, upstream, metadata, timeout,
        )
        .await;
    }
    let Ok(body) = axum::body::to_bytes(body, state.max_body_bytes).await else {
        return error(
            state,
            &tonic::Status::invalid_argument(format!(
                "the body is larger than {} bytes",
                state.max_body_bytes
            )),
            Some(StatusCode::PAYLOAD_TOO_LARGE),
        );
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let message =
        match transcode::build_request(binding, &variables, parts.uri.query(), &body, content_type)
        {
            Ok(message) => Bytes::from(message),
            Err(err) => return transcode_error(state, &err),
        };

    if binding.method.is_server_streaming() {
        let sse = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/event-stream"));
        return match upstream::server_streaming(
            upstream,
            &binding.method,
            metadata,
            timeout,
            message,
        )
        .await
        {
            Ok((metadata, stream)) if crate::files::is_download(binding) => {
                download(state, binding, &metadata, stream).await
            }
            Ok((metadata, stream)) => stream_response(state, binding, &metadata, stream, sse),
            Err(status) => upstream_error(state, binding, &status),
        };
    }
    match upstream::unary(upstream, &binding.method, metadata, timeout, message).await {
        Ok((metadata, bytes)) => answer(state, binding, &metadata, &bytes),
        Err(status) => upstream_error(state, binding, &status),
    }
}

/// The rendered answer of a unary (or client-streaming) call.
fn answer(
    state: &RestState,
    binding: &Binding,
    metadata: &MetadataMap,
    bytes: &[u8],
) -> Response<Body> {
    match transcode::render_response(binding, bytes) {
        Ok(rendered) => {
            let mut response = Response::new(Body::from(rendered.body));
            set_content_type(response.headers_mut(), &rendered.content_type);
            copy_metadata(metadata, response.headers_mut());
            response
        }
        Err(reason) => {
            tracing::error!(%reason, method = binding.method.full_name(), "cannot render the upstream response");
            error(state, &tonic::Status::internal("internal error"), None)
        }
    }
}

/// INVALID_ARGUMENT for a request that does not transcode, naming the field.
fn transcode_error(state: &RestState, err: &transcode::TranscodeError) -> Response<Body> {
    let status = tonic::Status::with_error_details(
        tonic::Code::InvalidArgument,
        err.to_string(),
        ErrorDetails::with_bad_request(vec![FieldViolation::new(err.field(), err.to_string())]),
    );
    error(state, &status, None)
}

/// A streamed upload (see [`crate::files`]): the body goes upstream piece by piece.
#[allow(clippy::too_many_arguments)]
async fn upload(
    state: &RestState,
    binding: &Binding,
    parts: &http::request::Parts,
    variables: &[(String, String)],
    body: Body,
    upstream: &upstream::Upstream,
    metadata: MetadataMap,
    timeout: Option<std::time::Duration>,
) -> Response<Body> {
    let too_large = || {
        let status = tonic::Status::resource_exhausted(format!(
            "the upload is larger than {} bytes",
            state.max_upload_bytes
        ));
        error(state, &status, Some(StatusCode::PAYLOAD_TOO_LARGE))
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > state.max_upload_bytes) {
        return too_large();
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let first =
        match transcode::build_request(binding, variables, parts.uri.query(), b"", content_type) {
            Ok(message) => Bytes::from(message),
            Err(err) => return transcode_error(state, &err),
        };
    let (tell, broken) = tokio::sync::oneshot::channel();
    let messages =
        crate::files::upload_messages(binding, first, body, state.max_upload_bytes, tell);
    let call = upstream::client_streaming(upstream, &binding.method, metadata, timeout, messages);
    // When the body breaks off the call is dropped with its stream never ended: the upstream
    // keeps nothing half-sent (it gives up at the call's deadline at the latest).
    tokio::select! {
        result = call => match result {
            Ok((metadata, bytes)) => answer(state, binding, &metadata, &bytes),
            Err(status) => upstream_error(state, binding, &status),
        },
        Ok(why) = broken => match why {
            crate::files::Broken::TooLarge => too_large(),
            crate::files::Broken::Body => error(
                state,
                &tonic::Status::invalid_argument("the request body broke off before its end"),
                Some(StatusCode::BAD_REQUEST),
            ),
        },
    }
}

/// A download (see [`crate::files`]): the first message decides the content type.
async fn download(
    state: &RestState,
    binding: &Binding,
    metadata: &MetadataMap,
    mut stream: tonic::Streaming<Bytes>,
) -> Response<Body> {
    match stream.message().await {
        Ok(Some(first)) => match crate::files::download_response(binding, &first, stream) {
            Ok(mut response) => {
                copy_metadata(metadata, response.headers_mut());
                response
            }
            Err(reason) => {
                tracing::error!(%reason, method = binding.method.full_name(), "cannot render the upstream response");
                error(state, &tonic::Status::internal("internal error"), None)
            }
        },
        Ok(None) => error(
            state,
            &tonic::Status::internal("the upstream answered nothing"),
            None,
        ),
        Err(status) => upstream_error(state, binding, &status),
    }
}

/// An upstream's refusal, its field violations spelled as the REST request spells the fields.
fn upstream_error(state: &RestState, binding: &Binding, status: &tonic::Status) -> Response<Body> {
    match transcode::rest_violations(binding, status) {
        Some(rest) => error(state, &rest, None),
        None => error(state, status, None),
    }
}

fn stream_response(
    state: &RestState,
    binding: &Binding,
    metadata: &MetadataMap,
    stream: tonic::Streaming<Bytes>,
    sse: bool,
) -> Response<Body> {
    let binding = binding.clone();
    let pool = state.pool.clone();
    let frames = stream.map(move |item| {
        let record = match item {
            Ok(bytes) => match transcode::render_response(&binding, &bytes) {
                Ok(rendered) => {
                    let value: serde_json::Value =
                        serde_json::from_slice(&rendered.body).unwrap_or(serde_json::Value::Null);
                    serde_json::json!({ "result": value })
                }
                Err(reason) => serde_json::json!({ "error": { "code": 13, "message": reason } }),
            },
            Err(status) => serde_json::json!({ "error": status_json(&pool, &status) }),
        };
        let text = record.to_string();
        let frame = if sse {
            let event = if record.get("error").is_some() {
                "error"
            } else {
                "message"
            };
            format!("event: {event}\ndata: {text}\n\n")
        } else {
            format!("{text}\n")
        };
        Ok::<_, std::convert::Infallible>(Bytes::from(frame))
    });
    let mut response = Response::new(Body::from_stream(frames));
    let content_type = if sse {
        "text/event-stream"
    } else {
        "application/x-ndjson"
    };
    set_content_type(response.headers_mut(), content_type);
    copy_metadata(metadata, response.headers_mut());
    response
}

fn set_content_type(headers: &mut HeaderMap, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(header::CONTENT_TYPE, value);
    }
}

/// Builds upstream metadata from the forwarded request headers.
pub fn forward_metadata(headers: &HeaderMap, request_id: &str) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    for name in FORWARDED {
        if let Some(value) = headers.get(*name).and_then(|v| v.to_str().ok())
            && let Ok(value) = MetadataValue::try_from(value)
        {
            metadata.insert(*name, value);
        }
    }
    if let Ok(value) = MetadataValue::try_from(request_id) {
        metadata.insert("x-request-id", value);
    }
    metadata
}

/// Response metadata becomes `Grpc-Metadata-<key>` headers; `x-request-id` stays as it is.
fn copy_metadata(metadata: &MetadataMap, headers: &mut HeaderMap) {
    for entry in metadata.iter() {
        if let tonic::metadata::KeyAndValueRef::Ascii(key, value) = entry {
            let name = key.as_str();
            if name.starts_with("grpc-") || name == "content-type" || name == "x-request-id" {
                continue;
            }
            let header = format!("grpc-metadata-{name}");
            if let (Ok(header), Ok(value)) = (
                http::HeaderName::from_bytes(header.as_bytes()),
                HeaderValue::from_bytes(value.as_encoded_bytes()),
            ) {
                headers.append(header, value);
            }
        }
    }
}

/// A `google.rpc.Status` JSON error response.
pub fn error(
    state: &RestState,
    status: &tonic::Status,
    http: Option<StatusCode>,
) -> Response<Body> {
    let http = http.unwrap_or_else(|| {
        // A refusal for size is 413 (the file, not the caller's rate, is too large).
        let too_large = status.code() == tonic::Code::ResourceExhausted
            && status
                .get_details_error_info()
                .is_some_and(|info| info.reason == "PAYLOAD_TOO_LARGE");
        if too_large {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            transcode::http_status(status.code())
        }
    });
    let body = status_json(&state.pool, status);
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = http;
    set_content_type(response.headers_mut(), "application/json");
    response
}
