//! Users' notification settings: time zone, channel overrides, quiet hours, and whether the daily
//! agenda is made. Changing the zone or turning the agenda on moves the next agenda to the next
//! agenda time on the user's clock.

use chrono::{DateTime, Utc};
use taskmesh_contracts::notifications_v1::{NotificationSettings, QuietHours};
use taskmesh_mesh::time::to_timestamp as ts;

use super::Store;
use crate::domain::Preferences;
use crate::domain::clock::{self, LocalTimeOfDay};
use crate::error::Error;

#[derive(Debug, sqlx::FromRow)]
struct Row {
    time_zone: String,
    channels: serde_json::Value,
    quiet_start: Option<i16>,
    quiet_end: Option<i16>,
    daily_agenda: bool,
    settings_version: i64,
    settings_update_time: Option<DateTime<Utc>>,
}

impl Row {
    fn etag(&self) -> String {
        format!("v{}", self.settings_version)
    }

    fn into_proto(self, user: &str) -> NotificationSettings {
        let quiet_hours = self
            .quiet_start
            .zip(self.quiet_end)
            .map(|(s, e)| QuietHours {
                start_time: LocalTimeOfDay::from_minutes(s).hh_mm(),
                end_time: LocalTimeOfDay::from_minutes(e).hh_mm(),
            });
        NotificationSettings {
            name: format!("users/{user}/notificationSettings"),
            etag: self.etag(),
            time_zone: self.time_zone,
            channels: Preferences::from_json(&self.channels).matrix(),
            quiet_hours,
            daily_agenda: self.daily_agenda,
            update_time: self.settings_update_time.map(ts),
        }
    }
}

/// A change of settings, checked.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    /// New zone.
    pub time_zone: Option<String>,
    /// Channel pairs to set.
    pub channels: Option<Vec<taskmesh_contracts::notifications_v1::ChannelSetting>>,
    /// New quiet hours (`Some(None)`: none).
    pub quiet_hours: Option<Option<(i16, i16)>>,
    /// Agenda on or off.
    pub daily_agenda: Option<bool>,
}

const COLUMNS: &str = "time_zone, channels, quiet_start, quiet_end, daily_agenda, settings_version, \
                       settings_update_time";

impl Store {
    /// `user`'s settings (the defaults until they change them).
    pub async fn settings(&self, user: &str) -> Result<NotificationSettings, Error> {
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE user_id = $1"))
                .bind(user)
                .fetch_optional(self.pool())
                .await?;
        Ok(row
            .unwrap_or_else(|| Row {
                time_zone: "UTC".to_owned(),
                channels: serde_json::json!({}),
                quiet_start: None,
                quiet_end: None,
                daily_agenda: true,
                settings_version: 0,
                settings_update_time: None,
            })
            .into_proto(user))
    }

    /// Applies `change` to `user`'s settings; `etag`, when given, must be current.
    pub async fn update_settings(
        &self,
        user: &str,
        etag: &str,
        change: SettingsChange,
        agenda_time: LocalTimeOfDay,
    ) -> Result<NotificationSettings, Error> {
        let mut tx = self.pool().begin().await?;
        let first_agenda = clock::next_local(Utc::now(), chrono_tz::Tz::UTC, agenda_time);
        sqlx::query(
            "INSERT INTO users (user_id, next_agenda_time) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(user)
        .bind(first_agenda)
        .execute(&mut *tx)
        .await?;
        let row: Row = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM users WHERE user_id = $1 FOR UPDATE"
        ))
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
        if !etag.is_empty() && etag != row.etag() {
            return Err(Error::EtagMismatch {
                name: format!("users/{user}/notificationSettings"),
                current: row.etag(),
            });
        }
        let time_zone = change.time_zone.unwrap_or(row.time_zone);
        let tz = clock::zone(&time_zone)
            .ok_or_else(|| Error::invalid("settings.time_zone", "not an IANA time zone"))?;
        let mut preferences = Preferences::from_json(&row.channels);
        if let Some(channels) = &change.channels {
            preferences.apply(channels);
        }
        let (quiet_start, quiet_end) = match change.quiet_hours {
            Some(Some((start, end))) => (Some(start), Some(end)),
            Some(None) => (None, None),
            None => (row.quiet_start, row.quiet_end),
        };
        let daily_agenda = change.daily_agenda.unwrap_or(row.daily_agenda);
        let next_agenda = clock::next_local(Utc::now(), tz, agenda_time);
        let updated: Row = sqlx::query_as(&format!(
            "UPDATE users SET time_zone = $2, channels = $3, quiet_start = $4, quiet_end = $5, \
               daily_agenda = $6, next_agenda_time = $7, settings_version = settings_version + 1, \
               settings_update_time = now() \
             WHERE user_id = $1 RETURNING {COLUMNS}"
        ))
        .bind(user)
        .bind(&time_zone)
        .bind(preferences.to_json())
        .bind(quiet_start)
        .bind(quiet_end)
        .bind(daily_agenda)
        .bind(next_agenda)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(updated.into_proto(user))
    }
}
