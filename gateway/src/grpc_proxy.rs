//! Native gRPC passthrough: a request for `/pkg.Service/Method` is forwarded, body and trailers
//! streaming as they are, to the upstream that serves `pkg.Service`. The same service behind
//! tonic-web answers grpc-web from browsers.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response};
use tower::Service;

use crate::guard::{EdgeGuard, client_ip};
use crate::upstream::Upstreams;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
            // The body is re-streamed without its size hint: after grpc-web-text decoding the
            // original length is wrong, and HTTP/2 would enforce it. A body that fails while it is
            // read (grpc-web-text that is not base64) is the client's fault, not the upstream's:
            // the flag tells the two apart when the call fails.
            let body_failed = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&body_failed);
            let frames = http_body_util::BodyStream::new(body).map(move |frame| {
                if frame.is_err() {
                    flag.store(true, Ordering::SeqCst);
                }
                frame
            });
            let body = http_body_util::StreamBody::new(frames);
            let request = Request::from_parts(parts, tonic::body::Body::new(body));
            let mut channel = upstream.channel.clone();
            if let Err(err) = std::future::poll_fn(|cx| channel.poll_ready(cx)).await {
                return Ok(
                    tonic::Status::unavailable(format!("upstream unavailable: {err}")).into_http(),
                );
            }
            match channel.call(request).await {
                Ok(response) => Ok(response.map(tonic::body::Body::new)),
                Err(_) if body_failed.load(Ordering::SeqCst) => {
                    Ok(tonic::Status::invalid_argument(
                        "the request body could not be read (a grpc-web-text body must be base64)",
                    )
                    .into_http())
                }
                Err(err) => Ok(
                    tonic::Status::unavailable(format!("upstream unavailable: {err}")).into_http(),
                ),
            }
        })
    }
}
