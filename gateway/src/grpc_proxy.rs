//! Native gRPC passthrough: a request for `/pkg.Service/Method` is forwarded to the upstream that
//! serves `pkg.Service`, its (one) request message whole, the answer streaming back as it comes. The same service behind
//! tonic-web answers grpc-web from browsers.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower::Service;

use crate::guard::{EdgeGuard, client_ip};
use crate::upstream::Upstreams;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest request passed on: a service's largest message (tonic's default 4 MiB) and its
/// gRPC frame header.
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024 + 5;

/// Forwards gRPC calls to the upstream of their service.
#[derive(Debug, Clone)]
pub struct GrpcProxy {
    upstreams: Arc<Upstreams>,
    guard: Arc<EdgeGuard>,
}

impl GrpcProxy {
    /// A proxy over `upstreams` that lets through what `guard` accepts.
    pub fn new(upstreams: Arc<Upstreams>, guard: Arc<EdgeGuard>) -> Self {
        Self { upstreams, guard }
    }
}

impl<B> Service<Request<B>> for GrpcProxy
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let upstreams = Arc::clone(&self.upstreams);
        let guard = Arc::clone(&self.guard);
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            let ip = client_ip(request.extensions());
            if let Err(refusal) = guard.check(&path, request.headers(), ip).await {
                let mut response = refusal.status.clone().into_http::<tonic::body::Body>();
                refusal.set_retry_after(response.headers_mut());
                return Ok(response);
            }
            let service = path
                .trim_start_matches('/')
                .rsplit_once('/')
                .map(|(service, _)| service.to_owned())
                .unwrap_or_default();
            let Some(upstream) = upstreams.for_service(&service) else {
                return Ok(
                    tonic::Status::unimplemented(format!("no upstream serves `{service}`"))
                        .into_http(),
                );
            };
            let (mut parts, body) = request.into_parts();
            // The channel sets scheme and authority from its endpoint; only the path travels.
            parts.uri = match path.parse() {
                Ok(uri) => uri,
                Err(_) => return Ok(tonic::Status::invalid_argument("bad path").into_http()),
            };
            // Hop-by-hop headers and a length that no longer fits (grpc-web-text is decoded on
            // the way) must not reach the HTTP/2 upstream.
            for name in [
                "content-length",
                "connection",
                "keep-alive",
                "proxy-connection",
                "transfer-encoding",
                "upgrade",
                "host",
            ] {
                parts.headers.remove(name);
            }
            parts
                .headers
                .insert("te", http::HeaderValue::from_static("trailers"));
            // Every taskmesh RPC takes one request message (server streaming at most), so the
            // request is read whole, up to the largest message a service accepts, and sent on
            // with its length: a streamed body left the upstream's HTTP/2 stream half-open after
            // the answer and about one call in a hundred failed with the connection (seen under
            // the load tool). Reading it whole also drops the size hint grpc-web-text decoding
            // made wrong. A body that cannot be read (grpc-web-text that is not base64) is the
            // client's fault, not the upstream's.
            let body = match http_body_util::BodyExt::collect(http_body_util::Limited::new(
                body,
                MAX_REQUEST_BYTES,
            ))
            .await
            {
                Ok(collected) => collected.to_bytes(),
                Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                    return Ok(tonic::Status::resource_exhausted(format!(
                        "the request is larger than {MAX_REQUEST_BYTES} bytes"
                    ))
                    .into_http());
                }
                Err(_) => {
                    return Ok(tonic::Status::invalid_argument(
                        "the request body could not be read (a grpc-web-text body must be base64)",
                    )
                    .into_http());
                }
            };
            let request = Request::from_parts(
                parts,
                tonic::body::Body::new(http_body_util::Full::new(body)),
            );
            let mut channel = upstream.channel.clone();
            if let Err(err) = std::future::poll_fn(|cx| channel.poll_ready(cx)).await {
                return Ok(
                    tonic::Status::unavailable(format!("upstream unavailable: {err}")).into_http(),
                );
            }
            match channel.call(request).await {
                Ok(response) => Ok(response.map(tonic::body::Body::new)),
                Err(err) => {
                    let mut cause = err.to_string();
                    let mut source = std::error::Error::source(&err);
                    while let Some(inner) = source {
                        cause.push_str(&format!(": {inner}"));
                        source = inner.source();
                    }
                    tracing::warn!(%service, %cause, "upstream call failed");
                    Ok(
                        tonic::Status::unavailable(format!("upstream unavailable: {err}"))
                            .into_http(),
                    )
                }
            }
        })
    }
}
