//! The gateway conformance suite: a real tonic upstream implementing the test-only contract
//! `gatewaytest.v1.Library` (testdata/), the real gateway in front of it, and one test per
//! HTTP-rule form, error mapping, streaming, grpc-web, gRPC passthrough and header behaviour.

mod upstream;

mod auth;
mod edge;
mod grpc;
mod projects;
mod rest;

use std::net::SocketAddr;

use taskmesh_gateway::upstream::UpstreamConfig;
use taskmesh_gateway::{Gateway, GatewayConfig};

pub(crate) mod pb {
    #![allow(clippy::all, clippy::pedantic, unreachable_pub, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/gatewaytest.v1.rs"));
}

pub(crate) const TEST_DESCRIPTORS: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/gatewaytest_descriptor.bin"));

/// The gateway's three addresses, running in front of a fresh upstream.
pub(crate) struct Harness {
    pub(crate) http: SocketAddr,
    pub(crate) grpc: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Harness {
    pub(crate) async fn start() -> Self {
        Self::with(|c| c).await
    }

    pub(crate) async fn with(customize: impl FnOnce(GatewayConfig) -> GatewayConfig) -> Self {
        let upstream = upstream::spawn().await;
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = customize(GatewayConfig {
            http_listen: any,
            grpc_listen: any,
            admin_listen: any,
            upstreams: vec![UpstreamConfig {
                prefix: "gatewaytest".into(),
                endpoint: format!("http://{upstream}"),
                timeout_ms: 10_000,
            }],
            cors_allowed_origins: vec!["http://app.example".into()],
            // The test upstream has no identity service behind it; auth has its own tests.
            verify_credentials: false,
            ..GatewayConfig::default()
        });
        let gateway = Gateway::build(config, &[TEST_DESCRIPTORS])
            .await
            .expect("gateway builds");
        let (http, grpc, admin) = (
            gateway.http_addr(),
            gateway.grpc_addr(),
            gateway.admin_addr(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(gateway.run(async {
            let _ = stopped.await;
        }));
        Self {
            http,
            grpc,
            admin,
            client: reqwest::Client::new(),
            _stop: stop,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }
}
