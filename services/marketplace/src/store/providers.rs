//! Providers: one per user, public or not, with the rating projection over their listings'
//! reviews. A provider's `public` is copied onto its listings in the same transaction, so that
//! search reads one table.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, violates};
use crate::error::reasons;

/// A stored provider.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProviderRow {
    /// The user's id.
    pub provider_id: String,
    /// Shown name.
    pub display_name: String,
    /// About.
    pub description: String,
    /// IANA zone.
    pub time_zone: String,
    /// Seen by others.
    pub public: bool,
    /// Reviews.
    pub rating_count: i64,
    /// Sum of their ratings.
    pub rating_sum: i64,
    /// Became a provider.
    pub create_time: DateTime<Utc>,
    /// Last change.
    pub update_time: DateTime<Utc>,
    /// Change counter.
    pub version: i64,
}

impl ProviderRow {
    /// `providers/{provider}`.
    pub fn name(&self) -> String {
        format!("providers/{}", self.provider_id)
    }

    /// The etag.
    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }
}

const COLUMNS: &str = "provider_id, display_name, description, time_zone, public, rating_count, \
    rating_sum, create_time, update_time, version";

/// A provider's profile as written.
#[derive(Debug, Clone, Default)]
pub struct ProviderFields {
    /// Shown name.
    pub display_name: Option<String>,
    /// About.
    pub description: Option<String>,
    /// IANA zone.
    pub time_zone: Option<String>,
    /// Seen by others.
    pub public: Option<bool>,
}

impl Store {
    /// Makes user `provider_id` a provider.
    pub async fn create_provider(
        &self,
        provider_id: &str,
        fields: &ProviderFields,
    ) -> Result<ProviderRow, StoreError> {
        sqlx::query_as(&format!(
            "INSERT INTO providers (provider_id, display_name, description, time_zone, public) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        ))
        .bind(provider_id)
        .bind(fields.display_name.as_deref().unwrap_or_default())
        .bind(fields.description.as_deref().unwrap_or_default())
        .bind(fields.time_zone.as_deref().unwrap_or_default())
        .bind(fields.public.unwrap_or_default())
        .fetch_one(&self.pool)
        .await
        .map_err(|err| {
            if violates(&err, "providers_pkey") {
                StoreError::Exists {
                    reason: reasons::PROVIDER_EXISTS,
                    name: format!("providers/{provider_id}"),
                }
            } else {
                err.into()
            }
        })
    }

    /// The provider `provider_id`.
    pub async fn provider(&self, provider_id: &str) -> Result<Option<ProviderRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM providers WHERE provider_id = $1"
        ))
        .bind(provider_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Public providers and `caller_id`'s own, best rated first, from `offset`.
    pub async fn list_providers(
        &self,
        caller_id: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ProviderRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM providers WHERE public OR provider_id = $1 \
             ORDER BY rating_sum::float8 / greatest(rating_count, 1) DESC, provider_id \
             OFFSET $2 LIMIT $3"
        ))
        .bind(caller_id)
        .bind(offset)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Changes a provider whose etag, when given, is current; a change of `public` reaches its
    /// listings in the same transaction.
    pub async fn update_provider(
        &self,
        provider_id: &str,
        etag: &str,
        change: &ProviderFields,
    ) -> Result<ProviderRow, StoreError> {
        let mut tx = self.begin().await?;
        if change.public.is_some() {
            // Listings first, the order review writes take (listing, then provider).
            sqlx::query("SELECT 1 FROM listings WHERE provider_id = $1 FOR UPDATE")
                .bind(provider_id)
                .execute(&mut *tx)
                .await?;
        }
        let current: Option<ProviderRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM providers WHERE provider_id = $1 FOR UPDATE"
        ))
        .bind(provider_id)
        .fetch_optional(&mut *tx)
        .await?;
        let current =
            current.ok_or_else(|| StoreError::NotFound(format!("providers/{provider_id}")))?;
        if !etag.is_empty() && etag != current.etag() {
            return Err(StoreError::EtagMismatch {
                name: current.name(),
                current: current.etag(),
            });
        }
        let row: ProviderRow = sqlx::query_as(&format!(
            "UPDATE providers SET display_name = coalesce($2, display_name), \
               description = coalesce($3, description), time_zone = coalesce($4, time_zone), \
               public = coalesce($5, public), update_time = now(), version = version + 1 \
             WHERE provider_id = $1 RETURNING {COLUMNS}"
        ))
        .bind(provider_id)
        .bind(change.display_name.as_deref())
        .bind(change.description.as_deref())
        .bind(change.time_zone.as_deref())
        .bind(change.public)
        .fetch_one(&mut *tx)
        .await?;
        if row.public != current.public {
            sqlx::query("UPDATE listings SET provider_public = $2 WHERE provider_id = $1")
                .bind(provider_id)
                .bind(row.public)
                .execute(&mut *tx)
                .await?;
        }
        self.commit(tx).await?;
        Ok(row)
    }
}
