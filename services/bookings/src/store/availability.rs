//! Each provider's availability, one row, its week and exceptions as JSON (read whole, written
//! whole), and its rules as the slot computation reads them.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::domain::slots::{Availability, Exception, Minutes};

/// One weekly range as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredHours {
    /// ISO day, Monday 1.
    pub day: u8,
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM` or `24:00`.
    pub end: String,
}

/// One exception as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredException {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// A day off.
    pub closed: bool,
    /// Extra ranges.
    pub extra: Vec<(String, String)>,
}

/// A stored availability.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct AvailabilityRow {
    /// The provider.
    pub provider_id: String,
    /// The week.
    pub weekly_hours: sqlx::types::Json<Vec<StoredHours>>,
    /// The exceptions.
    pub exceptions: sqlx::types::Json<Vec<StoredException>>,
    /// Buffer after each booking.
    pub buffer_seconds: i32,
    /// How far ahead.
    pub horizon_days: i32,
    /// How soon.
    pub minimum_notice_seconds: i32,
    /// Last change (`None` before the first).
    pub update_time: Option<DateTime<Utc>>,
    /// Change counter (0 before the first).
    pub version: i64,
}

impl AvailabilityRow {
    /// What a provider that never set its hours has: no hours, the default horizon.
    pub fn empty(provider_id: &str) -> Self {
        Self {
            provider_id: provider_id.to_owned(),
            horizon_days: 60,
            ..Self::default()
        }
    }

    /// The etag.
    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }

    /// The rules for slots, on `zone`'s clock.
    pub fn rules(&self, zone: Tz) -> Availability {
        let weekly = self
            .weekly_hours
            .iter()
            .filter_map(|hours| {
                let day = Weekday::try_from(hours.day.checked_sub(1)?).ok()?;
                Some((day, Minutes::parse(&hours.start, &hours.end)?))
            })
            .collect();
        let exceptions: HashMap<NaiveDate, Exception> = self
            .exceptions
            .iter()
            .filter_map(|e| {
                let date = NaiveDate::parse_from_str(&e.date, "%Y-%m-%d").ok()?;
                let extra = e
                    .extra
                    .iter()
                    .filter_map(|(start, end)| Minutes::parse(start, end))
                    .collect();
                Some((
                    date,
                    Exception {
                        closed: e.closed,
                        extra,
                    },
                ))
            })
            .collect();
        Availability {
            zone,
            weekly,
            exceptions,
            buffer: Duration::seconds(i64::from(self.buffer_seconds)),
            horizon: Duration::days(i64::from(self.horizon_days)),
            minimum_notice: Duration::seconds(i64::from(self.minimum_notice_seconds)),
        }
    }
}

const COLUMNS: &str = "provider_id, weekly_hours, exceptions, buffer_seconds, horizon_days, \
    minimum_notice_seconds, update_time, version";

impl Store {
    /// The provider's availability, or the empty one.
    pub async fn availability(&self, provider_id: &str) -> Result<AvailabilityRow, StoreError> {
        let row: Option<AvailabilityRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM availabilities WHERE provider_id = $1"
        ))
        .bind(provider_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.unwrap_or_else(|| AvailabilityRow::empty(provider_id)))
    }

    /// Writes `row` whole when `etag`, if given, is current.
    pub async fn put_availability(
        &self,
        row: &AvailabilityRow,
        etag: &str,
    ) -> Result<AvailabilityRow, StoreError> {
        let mut tx = self.begin().await?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM availabilities WHERE provider_id = $1 FOR UPDATE",
        )
        .bind(&row.provider_id)
        .fetch_optional(&mut *tx)
        .await?;
        let current = current.unwrap_or(0);
        if !etag.is_empty() && etag != format!("v{current}") {
            return Err(StoreError::EtagMismatch {
                name: format!("providers/{}/availability", row.provider_id),
                current: format!("v{current}"),
            });
        }
        let saved: AvailabilityRow = sqlx::query_as(&format!(
            "INSERT INTO availabilities (provider_id, weekly_hours, exceptions, buffer_seconds, \
               horizon_days, minimum_notice_seconds) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (provider_id) DO UPDATE SET weekly_hours = $2, exceptions = $3, \
               buffer_seconds = $4, horizon_days = $5, minimum_notice_seconds = $6, \
               update_time = now(), version = availabilities.version + 1 \
             RETURNING {COLUMNS}"
        ))
        .bind(&row.provider_id)
        .bind(&row.weekly_hours)
        .bind(&row.exceptions)
        .bind(row.buffer_seconds)
        .bind(row.horizon_days)
        .bind(row.minimum_notice_seconds)
        .fetch_one(&mut *tx)
        .await?;
        self.commit(tx).await?;
        Ok(saved)
    }
}
