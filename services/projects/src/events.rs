//! The stream the projects service publishes to. Event messages themselves are built next to the
//! state change they describe, in the store, so that both commit together.

use std::time::Duration;

use taskmesh_events::StreamSpec;
use taskmesh_mesh::config::NatsConfig;

/// `PROJECTS` on `taskmesh.projects.v1.>`.
pub fn stream(nats: &NatsConfig) -> StreamSpec {
    StreamSpec::for_context(
        "projects",
        nats.stream_replicas,
        Duration::from_secs(nats.duplicate_window_secs),
    )
}
