//! Prometheus metrics served on the admin port's `/metrics`. Each service has its own registry so
//! that tests can run several apps in one process.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The registry of one service and the metrics the runtime itself records.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Calls handled, by method and gRPC status code.
    pub grpc_handled: IntCounterVec,
    /// Call latency in seconds, by method.
    pub grpc_latency: HistogramVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry labelled with the service name.
    pub fn new(service: &str) -> Self {
        let labels = std::collections::HashMap::from([("service".to_owned(), service.to_owned())]);
        // Registering a well-formed metric in a fresh registry only fails on programming errors.
        let registry =
            Registry::new_custom(Some("taskmesh".to_owned()), Some(labels)).unwrap_or_default();
        let grpc_handled = IntCounterVec::new(
            Opts::new(
                "grpc_server_handled_total",
                "gRPC calls completed, by method and code",
            ),
            &["method", "code"],
        )
        .expect("valid metric definition");
        let grpc_latency = HistogramVec::new(
            HistogramOpts::new("grpc_server_handling_seconds", "gRPC call latency").buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["method"],
        )
        .expect("valid metric definition");
        let metrics = Self {
            registry,
            grpc_handled,
            grpc_latency,
        };
        metrics.register(Box::new(metrics.grpc_handled.clone()));
        metrics.register(Box::new(metrics.grpc_latency.clone()));
        metrics
    }

    /// Adds a collector (a service's own counters); a duplicate name is logged and skipped.
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(err) = self.registry.register(collector) {
            tracing::warn!(error = %err, "metric not registered");
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(error = %err, "metrics encoding failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
