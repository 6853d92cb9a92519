//! The daily agenda: at the configured time (08:00) on each user's own clock, a notification
//! listing their open tasks due today and those overdue. Users whose agenda is due are claimed
//! with `FOR UPDATE SKIP LOCKED` and moved to their next agenda time in the same transaction as
//! the notification, so each agenda is made once, by one replica. A user with nothing due gets
//! none that day.

use chrono::Utc;
use tokio::sync::watch;

use crate::config::{self, Agenda};
use crate::domain::clock::{self, LocalTimeOfDay};
use crate::domain::rules::{self, AgendaItem};
use crate::error::Error;
use crate::events::Deliverer;
use crate::store::facts;
use crate::store::inbox::{self, Made};

/// Users handled in one transaction.
const BATCH: i64 = 50;

/// Makes due agendas until stopped.
pub async fn run(deliverer: Deliverer, settings: Agenda, mut stop: watch::Receiver<bool>) {
    let time = settings.time();
    let poll = config::millis(settings.poll_ms);
    loop {
        if *stop.borrow() {
            return;
        }
        match round(&deliverer, time).await {
            Ok(handled) if handled >= BATCH as usize => continue,
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "cannot make daily agendas"),
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return,
        }
    }
}

#[derive(sqlx::FromRow)]
struct Due {
    user_id: String,
    time_zone: String,
}

/// Makes the agendas due now; returns how many users were handled.
async fn round(deliverer: &Deliverer, time: LocalTimeOfDay) -> Result<usize, Error> {
    let mut tx = deliverer.store.pool().begin().await?;
    let due: Vec<Due> = sqlx::query_as(
        "SELECT user_id, time_zone FROM users WHERE daily_agenda AND next_agenda_time <= now() \
         ORDER BY next_agenda_time LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let now = Utc::now();
    let mut made = Made::default();
    for user in &due {
        let tz = clock::zone(&user.time_zone).unwrap_or(chrono_tz::Tz::UTC);
        let (_, day_end) = clock::day_bounds(now, tz);
        let date = now.with_timezone(&tz).format("%Y-%m-%d").to_string();
        let items: Vec<AgendaItem> = facts::due_before(&mut tx, &user.user_id, day_end)
            .await?
            .into_iter()
            .map(|task| AgendaItem {
                overdue: task.due_time < now,
                due: task
                    .due_time
                    .with_timezone(&tz)
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
                task: task.task,
                title: task.title,
            })
            .collect();
        let recipient = format!("users/{}", user.user_id);
        if let Some(draft) = rules::daily_agenda(&recipient, &date, &items) {
            made += inbox::make(
                &mut tx,
                &draft,
                &format!("agenda/{date}"),
                &deliverer.making,
                now,
            )
            .await?;
        }
        sqlx::query("UPDATE users SET next_agenda_time = $2 WHERE user_id = $1")
            .bind(&user.user_id)
            .bind(clock::next_local(now, tz, time))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    deliverer.wake.after(made);
    if made.notifications > 0 {
        tracing::info!(agendas = made.notifications, "daily agendas made");
    }
    Ok(due.len())
}
