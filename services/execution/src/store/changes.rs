//! Execution changes as PostgreSQL announces them: a trigger NOTIFYs `execution_changed` with the
//! execution's name on every change (whichever replica made it), one LISTEN connection per process
//! receives them, and an in-process broadcast hands them to the watch streams. A stream re-reads
//! its execution only when it changed, never on a timer.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

use crate::error::Error;

/// The channel the trigger announces on.
pub const CHANNEL: &str = "execution_changed";
/// Announcements a slow stream may fall behind before it is told to re-read.
const BUFFER: usize = 4096;

/// What a watcher hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The execution of this name changed.
    Execution(String),
    /// Announcements may have been missed (the listening connection was lost): re-read.
    Resync,
}

/// The in-process side of the announcements.
#[derive(Debug, Clone)]
pub struct Changes {
    sender: broadcast::Sender<Change>,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(BUFFER).0,
        }
    }
}

impl Changes {
    /// Hears every change announced from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }

    /// Listens on `pool`'s database until `stopped` resolves, handing each announcement to the
    /// subscribers. A lost connection is opened again (subscribers are told to re-read); only
    /// a failure to listen at all is returned.
    pub async fn listen(
        &self,
        pool: &PgPool,
        stopped: impl std::future::Future<Output = ()>,
    ) -> Result<(), Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => return Ok(()),
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => {
                        // Nobody watching is fine.
                        let _ = self.sender.send(Change::Execution(notification.payload().to_owned()));
                    }
                    Ok(None) => {
                        tracing::warn!("the change listener lost its connection; reconnecting");
                        let _ = self.sender.send(Change::Resync);
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "the change listener failed; retrying");
                        let _ = self.sender.send(Change::Resync);
                        tokio::select! {
                            () = &mut stopped => return Ok(()),
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                },
            }
        }
    }
}
