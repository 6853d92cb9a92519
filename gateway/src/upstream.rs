//! Upstream gRPC services: one lazily connected channel per configured package prefix, and calls
//! that carry raw protobuf bytes (the gateway never needs generated types).

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use taskmesh_mesh::codec::RawCodec;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status, Streaming};

/// Where the services of a package prefix are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpstreamConfig {
    /// Proto package or service prefix, `taskmesh.projects.v1`.
    pub prefix: String,
    /// gRPC endpoint, `http://127.0.0.1:50052`.
    pub endpoint: String,
    /// Longest time a call may take, in milliseconds (a shorter client deadline wins).
    pub timeout_ms: u64,
}

/// A configured upstream.
#[derive(Debug, Clone)]
pub struct Upstream {
    prefix: String,
    /// The channel to it.
    pub channel: Channel,
    /// Its call timeout.
    pub timeout: Duration,
}

/// Every upstream, matched by longest prefix.
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    list: Vec<Upstream>,
}

/// An endpoint that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: key `upstreams`: `{endpoint}`: {reason}")]
pub struct UpstreamError {
    endpoint: String,
    reason: String,
}

impl Upstreams {
    /// Lazily connecting channels for `configs`.
    pub fn new(configs: &[UpstreamConfig]) -> Result<Self, UpstreamError> {
        let mut list = Vec::with_capacity(configs.len());
        for config in configs {
            let channel = Endpoint::from_shared(config.endpoint.clone())
                .map_err(|e| UpstreamError {
                    endpoint: config.endpoint.clone(),
                    reason: e.to_string(),
                })?
                .connect_timeout(Duration::from_secs(2))
                .tcp_nodelay(true)
                .connect_lazy();
            list.push(Upstream {
                prefix: config.prefix.clone(),
                channel,
                timeout: Duration::from_millis(config.timeout_ms),
            });
        }
        list.sort_by_key(|u| std::cmp::Reverse(u.prefix.len()));
        Ok(Self { list })
    }

    /// The upstream serving `service` (`taskmesh.projects.v1.ProjectService`).
    pub fn for_service(&self, service: &str) -> Option<&Upstream> {
        self.list.iter().find(|u| {
            service == u.prefix
                || service
                    .strip_prefix(u.prefix.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }
}

fn path(method: &prost_reflect::MethodDescriptor) -> Result<http::uri::PathAndQuery, Status> {
    format!("/{}/{}", method.parent_service().full_name(), method.name())
        .parse()
        .map_err(|_| Status::internal("invalid method path"))
}

/// tonic reports its own client-side timeout as CANCELLED; to the caller it is a passed deadline.
#[allow(clippy::needless_pass_by_value)]
fn deadline(status: Status) -> Status {
    if status.code() == tonic::Code::Cancelled && status.message() == "Timeout expired" {
        Status::deadline_exceeded("the deadline passed before the upstream answered")
    } else {
        status
    }
}

async fn ready(upstream: &Upstream) -> Result<tonic::client::Grpc<Channel>, Status> {
    let mut grpc = tonic::client::Grpc::new(upstream.channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("upstream unavailable: {e}")))?;
    Ok(grpc)
}

/// A unary call: the response's metadata and encoded message.
pub async fn unary(
    upstream: &Upstream,
    method: &prost_reflect::MethodDescriptor,
    metadata: MetadataMap,
    timeout: Option<Duration>,
    body: Bytes,
) -> Result<(MetadataMap, Bytes), Status> {
    let mut grpc = ready(upstream).await?;
    let mut request = Request::new(body);
    *request.metadata_mut() = metadata;
    request.set_timeout(timeout.unwrap_or(upstream.timeout));
    let response = grpc
        .unary(request, path(method)?, RawCodec)
        .await
        .map_err(deadline)?;
    let (metadata, message, _) = response.into_parts();
    Ok((metadata, message))
}

/// A server-streaming call: the response's metadata and the stream of encoded messages.
pub async fn server_streaming(
    upstream: &Upstream,
    method: &prost_reflect::MethodDescriptor,
    metadata: MetadataMap,
    timeout: Option<Duration>,
    body: Bytes,
) -> Result<(MetadataMap, Streaming<Bytes>), Status> {
    let mut grpc = ready(upstream).await?;
    let mut request = Request::new(body);
    *request.metadata_mut() = metadata;
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    let response = grpc
        .server_streaming(request, path(method)?, RawCodec)
        .await?;
    let (metadata, stream, _) = response.into_parts();
    Ok((metadata, stream))
}

/// A client-streaming call fed by `messages`: the response's metadata and encoded message.
pub async fn client_streaming<S>(
    upstream: &Upstream,
    method: &prost_reflect::MethodDescriptor,
    metadata: MetadataMap,
    timeout: Option<Duration>,
    messages: S,
) -> Result<(MetadataMap, Bytes), Status>
where
    S: futures::Stream<Item = Bytes> + Send + 'static,
{
    let mut grpc = ready(upstream).await?;
    let mut request = Request::new(messages);
    *request.metadata_mut() = metadata;
    request.set_timeout(timeout.unwrap_or(upstream.timeout));
    let response = grpc
        .client_streaming(request, path(method)?, RawCodec)
        .await
        .map_err(deadline)?;
    let (metadata, message, _) = response.into_parts();
    Ok((metadata, message))
}
