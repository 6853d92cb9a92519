//! Connecting to NATS without blocking startup: the client keeps reconnecting in the background and
//! readiness reports whether it is connected.

use std::time::Duration;

use async_nats::connection::State;

/// Connects to `url` as `name`. Returns at once even when NATS is down; the client reconnects.
pub async fn connect(
    url: &str,
    name: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::ConnectOptions::new()
        .name(format!("taskmesh-{name}"))
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .max_reconnects(None)
        .event_callback(|event| async move {
            tracing::info!(event = %event, "nats connection event");
        })
        .connect(url)
        .await
}

/// True while the client is connected.
pub fn is_connected(client: &async_nats::Client) -> bool {
    client.connection_state() == State::Connected
}

/// Adds a `nats` check to a service's readiness: ready only while connected.
pub fn add_readiness(readiness: &taskmesh_mesh::Readiness, client: &async_nats::Client) {
    let client = client.clone();
    readiness.add("nats", move || {
        let connected = is_connected(&client);
        Box::pin(async move { connected })
    });
}
