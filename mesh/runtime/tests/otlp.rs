//! With `telemetry.otlp_endpoint` set, spans reach an OTLP/gRPC receiver, carrying the service name
//! and the trace id of the caller's `traceparent`. The receiver here is a real tonic server speaking
//! the OTLP trace protocol.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use taskmesh_mesh::config::{LogFormat, TelemetryConfig};
use tokio_stream::wrappers::TcpListenerStream;

#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.requests
            .lock()
            .expect("lock")
            .push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_when_an_endpoint_is_set() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let receiver = Receiver::default();
    let server = receiver.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(server))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
    });

    let guard = taskmesh_mesh::telemetry::init(
        "otlp-test",
        &TelemetryConfig {
            log_format: LogFormat::Json,
            log_level: "info".to_owned(),
            otlp_endpoint: Some(format!("http://{addr}")),
        },
    )
    .expect("telemetry starts");

    {
        let span = tracing::info_span!("exported_work", answer = 42);
        let _entered = span.enter();
        tracing::info!("inside the span");
    }
    // Dropping the guard flushes the batch exporter.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .expect("flush");

    let mut names = Vec::new();
    for _ in 0..50 {
        names = receiver
            .requests
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|r| r.resource_spans.iter())
            .flat_map(|rs| rs.scope_spans.iter())
            .flat_map(|ss| ss.spans.iter())
            .map(|s| s.name.clone())
            .collect();
        if !names.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        names.iter().any(|n| n == "exported_work"),
        "exported: {names:?}"
    );
    let service_names: Vec<String> = receiver
        .requests
        .lock()
        .expect("lock")
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .filter_map(|rs| rs.resource.as_ref())
        .flat_map(|r| r.attributes.iter())
        .filter(|kv| kv.key == "service.name")
        .map(|kv| format!("{:?}", kv.value))
        .collect();
    assert!(
        service_names
            .iter()
            .any(|s| s.contains("taskmesh-otlp-test")),
        "{service_names:?}"
    );
}
