//! The load tool (`taskmesh-load`) against the whole platform: every scenario over every way in
//! answers without an error, and every assignment of the notify-lag run reaches its stream, so the
//! figures in docs/benchmarks.md measure calls that work.

use std::time::Duration;

use taskmesh_load::engine::{self, Load};
use taskmesh_load::platform::{Endpoints, Platform as Loaded, Scenario, Transport};
use taskmesh_testing::Stack;

use crate::harness::{Platform, ROOMY_RATE_LIMITS, roomy_limits};

/// Calls per scenario and way in: enough that the mixed scenario reaches each of its calls.
const CALLS: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_over_every_way_in_without_an_error() {
    let stack = Stack::load();
    let platform = Platform::start_with(&stack, &roomy_limits(), ROOMY_RATE_LIMITS).await;
    let endpoints = Endpoints {
        projects: platform.grpc_endpoint("projects"),
        tasks: platform.grpc_endpoint("tasks"),
        gateway_grpc: format!("http://127.0.0.1:{}", platform.grpc_port),
        gateway_http: platform.base.clone(),
    };
    let loaded = Loaded::prepare(&endpoints, 10).await.expect("prepare");
    let load = Load {
        concurrency: 4,
        requests: Some(CALLS),
        duration: Duration::from_secs(60),
        warmup: Duration::ZERO,
    };
    for scenario in Scenario::ALL {
        for transport in Transport::ALL {
            let caller = loaded.clone();
            let measured = engine::run(load, move |n| {
                let caller = caller.clone();
                async move { caller.call(transport, &scenario.call(n), n).await }
            })
            .await;
            assert_eq!(
                (measured.ok, measured.errors),
                (CALLS, 0),
                "{scenario:?} over {transport:?}: {:?}",
                measured.first_error
            );
            assert_eq!(measured.latencies.len(), CALLS);
        }
    }
    // The notifications lag run: every assignment's notification arrives on the stream.
    let options = taskmesh_load::notify_lag::Options {
        rate: 20.0,
        duration: Duration::from_secs(2),
        email: false,
    };
    let notified = taskmesh_load::notify_lag::measure(
        &loaded,
        &platform.grpc_endpoint("notifications"),
        &platform.base,
        &stack,
        options,
    )
    .await
    .expect("notify lag");
    assert_eq!((notified.sent, notified.received), (40, 40), "{notified:?}");
    assert_eq!(notified.lag.count, 40);
}
