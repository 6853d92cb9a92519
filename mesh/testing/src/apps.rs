//! Apps of the service kit run inside a test: started on the test's runtime, stopped (drained) on
//! request or when dropped, and reached over a plain channel.

use std::net::SocketAddr;

use tokio::sync::oneshot;
use tonic::transport::Channel;

/// A running app and its shutdown switch.
#[derive(Debug)]
pub struct RunningApp {
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// Its admin HTTP address.
    pub admin_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl RunningApp {
    /// Runs `app` until it is stopped or dropped.
    pub fn start<S: taskmesh_service::Service>(app: taskmesh_service::App<S>) -> Self {
        let (addr, admin_addr) = (app.grpc_addr(), app.admin_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            let _ = app
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            admin_addr,
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// Drains and stops the app, and waits until it has.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }

    /// A channel to its gRPC port.
    pub async fn channel(&self) -> Channel {
        channel(self.addr).await
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A connected channel to `addr`.
pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a valid uri")
        .connect()
        .await
        .expect("connect")
}
