//! SubscribeNotifications. The database is the truth and the stream only reads it: a stream sends
//! the caller's notifications after its cursor in order, then sleeps until a commit that made one
//! for its user wakes it (PostgreSQL `NOTIFY` on [`CHANNEL`], heard by one listener per process,
//! [`Hub::listen`]), and reads again. A wake-up that is missed (the listener reconnecting, a slow
//! stream) costs only latency: every stream also reads again every few seconds. Numbers of one
//! inbox commit in order (see [`crate::store::inbox`]), so reading after the last number sent
//! misses nothing and repeats nothing, also across reconnects with the cursor.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use taskmesh_contracts::notifications_v1::Notification;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::error::Error;
use crate::store::Store;
use crate::store::inbox::CHANNEL;

/// What a subscriber receives.
pub type NotificationStream = Pin<Box<dyn Stream<Item = Result<Notification, Status>> + Send>>;

/// Wakes every stream (after the listener reconnected).
const EVERYONE: &str = "*";
/// Notifications read at a time.
const PAGE: i64 = 100;
/// How often a stream reads again without being woken.
const SAFETY_READ: Duration = Duration::from_secs(5);
/// Notifications buffered per stream before the reader waits for the client.
const BUFFER: usize = 64;

/// The process's streams and the listener that wakes them.
#[derive(Debug)]
pub struct Hub {
    wakes: broadcast::Sender<Arc<str>>,
    open: Mutex<HashMap<String, usize>>,
    max_per_user: usize,
}

/// Holds one of a user's stream places until the stream ends.
struct Place {
    hub: Arc<Hub>,
    user: String,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.hub.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

impl Hub {
    /// A hub allowing `max_per_user` streams per user.
    pub fn new(max_per_user: usize) -> Arc<Self> {
        let (wakes, _) = broadcast::channel(4096);
        Arc::new(Self {
            wakes,
            open: Mutex::new(HashMap::new()),
            max_per_user,
        })
    }

    /// Listens for new notifications until `stop`, waking the streams of their users.
    pub async fn listen(
        &self,
        pool: &PgPool,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => {
                        let _ = self.wakes.send(Arc::from(notification.payload()));
                    }
                    // The connection was lost and is made again on the next call: what was
                    // sent meanwhile is not heard, so everyone reads again.
                    Ok(None) => {
                        let _ = self.wakes.send(Arc::from(EVERYONE));
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "inbox listener interrupted");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                },
                _ = stop.changed() => return Ok(()),
            }
        }
    }

    fn take_place(self: &Arc<Self>, user: &str) -> Result<Place, Error> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(user.to_owned()).or_default();
        if *count >= self.max_per_user {
            return Err(Error::TooManyStreams {
                max: self.max_per_user,
            });
        }
        *count += 1;
        Ok(Place {
            hub: Arc::clone(self),
            user: user.to_owned(),
        })
    }

    /// A stream of `user`'s notifications after `cursor` (after the newest when `None`).
    pub async fn subscribe(
        self: &Arc<Self>,
        store: Store,
        user: String,
        cursor: Option<i64>,
    ) -> Result<NotificationStream, Error> {
        let place = self.take_place(&user)?;
        // Listening starts before the first read, so nothing committed after it goes unheard.
        let wakes = self.wakes.subscribe();
        let last = match cursor {
            Some(cursor) => cursor,
            None => store.newest_cursor(&user).await?,
        };
        let (sender, receiver) = mpsc::channel(BUFFER);
        tokio::spawn(async move {
            let _place = place;
            follow(store, user, last, wakes, sender).await;
        });
        Ok(Box::pin(ReceiverStream::new(receiver)))
    }
}

/// Sends `user`'s notifications after `last` until the client goes away.
async fn follow(
    store: Store,
    user: String,
    mut last: i64,
    mut wakes: broadcast::Receiver<Arc<str>>,
    sender: mpsc::Sender<Result<Notification, Status>>,
) {
    loop {
        let rows = match store.after(&user, last, PAGE).await {
            Ok(rows) => rows,
            Err(err) => {
                let _ = sender.send(Err(err.into())).await;
                return;
            }
        };
        let full = rows.len() as i64 == PAGE;
        for row in rows {
            last = row.seq;
            if sender.send(Ok(row.into_proto())).await.is_err() {
                return;
            }
        }
        if full {
            continue;
        }
        // Sleep until this user's inbox changes, the safety read, or the client leaves.
        let deadline = tokio::time::sleep(SAFETY_READ);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                woken = wakes.recv() => match woken {
                    Ok(who) if *who == *user || &*who == EVERYONE => break,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = &mut deadline => break,
                () = sender.closed() => return,
            }
        }
    }
}
