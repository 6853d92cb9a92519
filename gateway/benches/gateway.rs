//! Gateway overhead benchmark (not a test): one upstream, three ways to call the same RPC.
//!
//! `cargo bench -p taskmesh-gateway --bench gateway` runs, in one process and against the same
//! in-process upstream, a fixed number of `GetBook` calls with bounded concurrency:
//! direct gRPC (the floor), REST/JSON through the gateway, and grpc-web through the gateway. It
//! prints throughput and p50/p99 latency, and each mode's ratio to direct gRPC.
//!
//! The three modes run in interleaved rounds (`BENCH_ROUNDS`, default 3) so that warm-up and
//! machine noise hit them alike; each mode's median round is reported.
//!
//! Environment: `BENCH_REQUESTS` (default 20000), `BENCH_CONCURRENCY` (default 32).
//!
//! With `BENCH_AUTH=1` (needs the local stack: `make infra`) a fourth mode calls the same REST
//! route through a second gateway that verifies an access token on every call against a real
//! identity service, so the row's ratio to plain REST is the price of the edge's token check.

#[path = "../tests/conformance/upstream.rs"]
mod upstream;

mod pb {
    #![allow(
        clippy::all,
        clippy::pedantic,
        unreachable_pub,
        missing_docs,
        dead_code
    )]
    include!(concat!(env!("OUT_DIR"), "/gatewaytest.v1.rs"));
}

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use taskmesh_gateway::upstream::UpstreamConfig;
use taskmesh_gateway::{Gateway, GatewayConfig};
use tokio::sync::Semaphore;

const TEST_DESCRIPTORS: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/gatewaytest_descriptor.bin"));

struct Report {
    mode: &'static str,
    throughput: f64,
    p50: Duration,
    p99: Duration,
}

async fn measure<F, Fut>(mode: &'static str, requests: usize, concurrency: usize, call: F) -> Report
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    for _ in 0..200 {
        call().await;
    }
    let permits = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(requests);
    for _ in 0..requests {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("semaphore");
        let call = Arc::clone(&call);
        handles.push(tokio::spawn(async move {
            let begin = Instant::now();
            call().await;
            drop(permit);
            begin.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for handle in handles {
        latencies.push(handle.await.expect("request task"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Report {
        mode,
        throughput: requests as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn grpc_web_frame(message: &impl Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    let mut out = vec![0_u8];
    out.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

#[tokio::main]
async fn main() {
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);

    let upstream = upstream::spawn().await;
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let gateway = Gateway::build(
        GatewayConfig {
            http_listen: any,
            grpc_listen: any,
            admin_listen: any,
            upstreams: vec![UpstreamConfig {
                prefix: "gatewaytest".into(),
                endpoint: format!("http://{upstream}"),
                timeout_ms: 10_000,
            }],
            // The test upstream has no identity behind it: this measures routing and transcoding.
            verify_credentials: false,
            ..GatewayConfig::default()
        },
        &[TEST_DESCRIPTORS],
    )
    .await
    .expect("gateway");
    let http = gateway.http_addr();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway.run(async {
        let _ = stopped.await;
    }));

    let grpc = pb::library_client::LibraryClient::connect(format!("http://{upstream}"))
        .await
        .expect("connect");
    let client = reqwest::Client::new();
    let rest_url = format!("http://{http}/v1/shelves/s/books/b");
    let web_url = format!("http://{http}/gatewaytest.v1.Library/GetBook");
    let web_body = grpc_web_frame(&pb::GetBookRequest {
        name: "shelves/s/books/b".into(),
    });
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);

    let authed = if std::env::var("BENCH_AUTH").is_ok_and(|v| v == "1") {
        Some(verifying_gateway(upstream).await)
    } else {
        None
    };

    let mut results: Vec<Vec<Report>> = vec![Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..rounds {
        let grpc = grpc.clone();
        results[0].push(
            measure("direct gRPC", requests, concurrency, move || {
                let mut client = grpc.clone();
                async move {
                    client
                        .get_book(pb::GetBookRequest {
                            name: "shelves/s/books/b".into(),
                        })
                        .await
                        .expect("direct call");
                }
            })
            .await,
        );
        let (rest_client, url) = (client.clone(), rest_url.clone());
        results[1].push(
            measure("REST via gateway", requests, concurrency, move || {
                let client = rest_client.clone();
                let url = url.clone();
                async move {
                    let response = client.get(&url).send().await.expect("rest call");
                    assert!(response.status().is_success());
                    response.bytes().await.expect("body");
                }
            })
            .await,
        );
        let (web_client, url, body) = (client.clone(), web_url.clone(), web_body.clone());
        results[2].push(
            measure("grpc-web via gateway", requests, concurrency, move || {
                let client = web_client.clone();
                let url = url.clone();
                let body = body.clone();
                async move {
                    let response = client
                        .post(&url)
                        .header("content-type", "application/grpc-web+proto")
                        .body(body)
                        .send()
                        .await
                        .expect("grpc-web call");
                    assert!(response.status().is_success());
                    response.bytes().await.expect("body");
                }
            })
            .await,
        );
        if let Some((url, token)) = &authed {
            let (auth_client, url, token) = (client.clone(), url.clone(), token.clone());
            results[3].push(
                measure(
                    "REST via gateway, token verified",
                    requests,
                    concurrency,
                    move || {
                        let client = auth_client.clone();
                        let url = url.clone();
                        let token = token.clone();
                        async move {
                            let response = client
                                .get(&url)
                                .bearer_auth(&token)
                                .send()
                                .await
                                .expect("rest call");
                            assert!(response.status().is_success(), "{}", response.status());
                            response.bytes().await.expect("body");
                        }
                    },
                )
                .await,
            );
        }
    }
    let median = |mut reports: Vec<Report>| {
        reports.sort_by(|a, b| a.throughput.total_cmp(&b.throughput));
        reports.swap_remove(reports.len() / 2)
    };
    let mut results = results.into_iter().filter(|r| !r.is_empty()).map(median);
    let (Some(direct), Some(rest), Some(web)) = (results.next(), results.next(), results.next())
    else {
        return;
    };
    let verified = results.next();

    println!(
        "gateway benchmark: {requests} GetBook calls per mode and round, concurrency {concurrency}, median of {rounds} rounds"
    );
    println!(
        "| mode | throughput (req/s) | p50 | p99 | throughput vs direct | p50 vs direct | p99 vs direct |"
    );
    println!("|---|---|---|---|---|---|---|");
    for report in [Some(&direct), Some(&rest), Some(&web), verified.as_ref()]
        .into_iter()
        .flatten()
    {
        println!(
            "| {} | {:.0} | {:.3} ms | {:.3} ms | {:.2}x | {:.2}x | {:.2}x |",
            report.mode,
            report.throughput,
            report.p50.as_secs_f64() * 1e3,
            report.p99.as_secs_f64() * 1e3,
            report.throughput / direct.throughput,
            report.p50.as_secs_f64() / direct.p50.as_secs_f64(),
            report.p99.as_secs_f64() / direct.p99.as_secs_f64(),
        );
    }
}

/// A second gateway in front of `upstream` that verifies tokens against the test identity service
/// (per-user limits out of the way); returns the REST URL and a valid token.
async fn verifying_gateway(upstream: SocketAddr) -> (String, String) {
    let identity = taskmesh_testing::identity::identity();
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let gateway = Gateway::build(
        GatewayConfig {
            http_listen: any,
            grpc_listen: any,
            admin_listen: any,
            upstreams: vec![UpstreamConfig {
                prefix: "gatewaytest".into(),
                endpoint: format!("http://{upstream}"),
                timeout_ms: 10_000,
            }],
            auth: taskmesh_mesh::auth::AuthConfig {
                identity_endpoint: identity.endpoint.clone(),
                ..Default::default()
            },
            rate_limits: taskmesh_gateway::guard::RateLimits {
                user_per_second: 1_000_000,
                user_burst: 1_000_000,
                ..Default::default()
            },
            ..GatewayConfig::default()
        },
        &[TEST_DESCRIPTORS],
    )
    .await
    .expect("verifying gateway");
    let url = format!("http://{}/v1/shelves/s/books/b", gateway.http_addr());
    tokio::spawn(gateway.run(std::future::pending()));
    (url, taskmesh_testing::identity::token("bench"))
}
