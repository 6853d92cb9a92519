//! The tower layer in front of every gRPC service: assigns request and correlation ids, reads the
//! W3C trace context and the `grpc-timeout` deadline, opens the call's tracing span, authenticates
//! the caller ([`CallGuard`]), checks the request against its contract ([`RequestRules`]), enforces
//! the deadline, echoes `x-request-id`, and records metrics.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Request, Response};
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::auth::{CallGuard, Scope};
use crate::context::{ANONYMOUS, CORRELATION_ID_HEADER, CallContext, REQUEST_ID_HEADER};
use crate::metrics::Metrics;
use crate::validate::{MethodRules, RequestRules};

/// Largest request body the contract check reads (tonic's default decoding limit plus the frame
/// header); a larger one is refused by the server's own decoder.
const MAX_CHECKED_BODY: usize = 4 * 1024 * 1024 + 5;

/// Adds [`CallService`] around a service.
#[derive(Clone, Debug)]
pub struct CallLayer {
    metrics: Metrics,
    guard: CallGuard,
    rules: RequestRules,
}

impl CallLayer {
    /// A layer recording into `metrics`, checking credentials with `guard` and requests with
    /// `rules`.
    pub fn new(metrics: Metrics, guard: CallGuard, rules: RequestRules) -> Self {
        Self {
            metrics,
            guard,
            rules,
        }
    }
}

impl<S> Layer<S> for CallLayer {
    type Service = CallService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallService {
            inner,
            metrics: self.metrics.clone(),
            guard: self.guard.clone(),
            rules: self.rules.clone(),
        }
    }
}

/// Reads a unary request's one frame and checks it with `rules`; hands on the request (re-framed
/// when OUTPUT_ONLY fields were cleared) or the INVALID_ARGUMENT to answer. Bodies this check cannot
/// read (compressed, several frames, too large) are handed on as they came for tonic to judge.
async fn check_request(
    rules: &RequestRules,
    method: &MethodRules,
    request: Request<Body>,
) -> Result<Request<Body>, tonic::Status> {
    use http_body_util::BodyExt;

    let (parts, body) = request.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_CHECKED_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            return Err(match err.downcast::<tonic::Status>() {
                Ok(status) => *status,
                Err(_) => tonic::Status::resource_exhausted("the request is too large"),
            });
        }
    };
    let framed = bytes.len() >= 5
        && bytes[0] == 0
        && u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize == bytes.len() - 5;
    let replaced = if framed {
        rules.check(method, &bytes[5..])?
    } else {
        None
    };
    let body = match replaced {
        Some(message) => {
            let mut framed = Vec::with_capacity(message.len() + 5);
            framed.push(0);
            framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
            framed.extend_from_slice(&message);
            bytes::Bytes::from(framed)
        }
        None => bytes,
    };
    Ok(Request::from_parts(
        parts,
        Body::new(http_body_util::Full::new(body)),
    ))
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct CallService<S> {
    inner: S,
    metrics: Metrics,
    guard: CallGuard,
    rules: RequestRules,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for CallService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // The clone that was polled ready handles this call; the fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.metrics.clone();
        let guard = self.guard.clone();
        let rules = self.rules.clone();

        let method = request.uri().path().to_owned();
        let context = call_context(request.headers());
        let request_id = context.request_id.clone();
        let deadline = context.deadline;

        let span = tracing::info_span!(
            "grpc",
            rpc = %method,
            request_id = %context.request_id,
            correlation_id = %context.correlation_id,
            trace_id = %context.trace_id,
        );
        link_trace_context(&span, &context.traceparent);

        Box::pin(
            async move {
                let started = Instant::now();
                let method_rules = rules.method(&method);
                let result = match guard.check(&method, request.headers()).await {
                    Err(status) => Ok(status.into_http()),
                    Ok(caller) => {
                        let context = match caller {
                            Some(caller) => context.with_caller(caller),
                            None => context,
                        };
                        request.extensions_mut().insert(context);
                        let checked = match method_rules {
                            Some(method_rules) => {
                                check_request(&rules, method_rules, request).await
                            }
                            None => Ok(request),
                        };
                        match checked {
                            // Refused by its contract: answered, counted and logged like any call.
                            Err(status) => Ok(status.into_http()),
                            Ok(request) => {
                                let call = inner.call(request);
                                match deadline {
                                    Some(deadline) => {
                                        match tokio::time::timeout_at(deadline.into(), call).await {
                                            Ok(result) => result,
                                            Err(_) => Ok(tonic::Status::deadline_exceeded(
                                                "the deadline passed before the call finished",
                                            )
                                            .into_http()),
                                        }
                                    }
                                    None => call.await,
                                }
                            }
                        }
                    }
                };
                let elapsed = started.elapsed();
                // The label is the RPC when it is one this server has, so that arbitrary paths
                // cannot grow the metrics without bound.
                let known = method_rules.is_some()
                    || method.starts_with("/grpc.health.v1.")
                    || method.starts_with("/grpc.reflection.");
                let label = if known { method.as_str() } else { "unknown" };
                match result {
                    Ok(mut response) => {
                        let code = response
                            .headers()
                            .get("grpc-status")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<i32>().ok())
                            .map(tonic::Code::from_i32)
                            .unwrap_or(tonic::Code::Ok);
                        metrics
                            .grpc_handled
                            .with_label_values(&[label, code_name(code)])
                            .inc();
                        metrics
                            .grpc_latency
                            .with_label_values(&[label])
                            .observe(elapsed.as_secs_f64());
                        if let Ok(value) = HeaderValue::from_str(&request_id) {
                            response.headers_mut().insert(REQUEST_ID_HEADER, value);
                        }
                        tracing::info!(
                            code = code_name(code),
                            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                            "rpc finished"
                        );
                        Ok(response)
                    }
                    Err(err) => Err(err),
                }
            }
            .instrument(span),
        )
    }
}

/// How much earlier than the client's deadline the server stops working on a call.
const DEADLINE_MARGIN: Duration = Duration::from_millis(10);

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

fn call_context(headers: &HeaderMap) -> CallContext {
    let request_id = header(headers, REQUEST_ID_HEADER)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let correlation_id = header(headers, CORRELATION_ID_HEADER)
        .map(str::to_owned)
        .unwrap_or_else(|| request_id.clone());
    let (trace_id, traceparent) = match header(headers, "traceparent").and_then(parse_traceparent) {
        Some((trace_id, _)) => (
            trace_id.to_owned(),
            header(headers, "traceparent")
                .unwrap_or_default()
                .to_owned(),
        ),
        None => {
            let trace_id = uuid::Uuid::new_v4().simple().to_string();
            let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
            (trace_id.clone(), format!("00-{trace_id}-{span_id}-01"))
        }
    };
    // The server gives up a few milliseconds before the client does, so the client receives
    // DEADLINE_EXCEEDED from this layer rather than tonic's generic CANCELLED timeout.
    let deadline = header(headers, "grpc-timeout")
        .and_then(parse_grpc_timeout)
        .map(|d| Instant::now() + d.saturating_sub(DEADLINE_MARGIN));
    CallContext {
        request_id,
        correlation_id,
        trace_id,
        traceparent,
        deadline,
        caller: ANONYMOUS.to_owned(),
        scope: Scope::Read,
        credential: None,
    }
}

/// Splits a version-00 `traceparent` into trace id and parent span id.
pub fn parse_traceparent(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let span_id = parts.next()?;
    let flags = parts.next()?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = hex(version, 2)
        && hex(trace_id, 32)
        && hex(span_id, 16)
        && hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && span_id.bytes().any(|b| b != b'0');
    valid.then_some((trace_id, span_id))
}

/// Parses a `grpc-timeout` header value: up to 8 digits and a unit of H, M, S, m, u or n.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

fn link_trace_context(span: &tracing::Span, traceparent: &str) {
    use opentelemetry::propagation::TextMapPropagator;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let carrier =
        std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier);
    // Without an OpenTelemetry layer installed this is a no-op.
    let _ = span.set_parent(parent);
}

/// The canonical upper-case name of a gRPC code, used as a metric label.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_every_unit() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("5x"), None);
        assert_eq!(parse_grpc_timeout("123456789m"), None);
        assert_eq!(parse_grpc_timeout("m"), None);
    }

    #[test]
    fn traceparents_are_validated() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(tp),
            Some(("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"))
        );
        assert!(parse_traceparent("00-0000-00f067aa0ba902b7-01").is_none());
        assert!(
            parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none()
        );
    }

    #[test]
    fn incoming_ids_are_kept_and_missing_ones_generated() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("req-1"));
        // A caller named in metadata is never trusted: only verified credentials name one.
        headers.insert("x-taskmesh-user", HeaderValue::from_static("users/ada"));
        let context = call_context(&headers);
        assert_eq!(context.request_id, "req-1");
        assert_eq!(context.correlation_id, "req-1");
        assert_eq!(context.caller, ANONYMOUS);
        assert_eq!(context.trace_id.len(), 32);
        let fresh = call_context(&HeaderMap::new());
        assert_eq!(fresh.caller, ANONYMOUS);
        assert!(!fresh.request_id.is_empty());
    }
}
