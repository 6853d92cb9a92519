//! Listings: a provider's services, draft or published, soft-deleted and undeleted. Each write
//! publishes the listing's event through the outbox.

use chrono::{DateTime, Utc};
use taskmesh_mesh::CallContext;

use super::{Store, StoreError};

/// A stored listing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListingRow {
    /// The provider's id.
    pub provider_id: String,
    /// Its id.
    pub listing_id: String,
    /// One line.
    pub title: String,
    /// What it is.
    pub description: String,
    /// Its category's id.
    pub category_id: String,
    /// ISO 4217.
    pub currency_code: String,
    /// Whole units of the price.
    pub price_units: i64,
    /// Billionths of the price.
    pub price_nanos: i32,
    /// Length of one booking.
    pub duration_seconds: i32,
    /// Given remotely.
    pub remote: bool,
    /// Where, when not remote.
    pub location: String,
    /// `Listing.State` number.
    pub state: i16,
    /// Reviews.
    pub rating_count: i64,
    /// Sum of their ratings.
    pub rating_sum: i64,
    /// Made.
    pub create_time: DateTime<Utc>,
    /// Last change.
    pub update_time: DateTime<Utc>,
    /// Deleted (softly).
    pub delete_time: Option<DateTime<Utc>>,
    /// Change counter.
    pub version: i64,
}

impl ListingRow {
    /// `providers/{provider}/listings/{listing}`.
    pub fn name(&self) -> String {
        format!(
            "providers/{}/listings/{}",
            self.provider_id, self.listing_id
        )
    }

    /// The etag.
    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }
}

/// The columns of [`ListingRow`] over `listings l`.
pub const COLUMNS: &str = "l.provider_id, l.listing_id, l.title, l.description, l.category_id, \
    l.currency_code, l.price_units, l.price_nanos, l.duration_seconds, l.remote, l.location, \
    l.state, l.rating_count, l.rating_sum, l.create_time, l.update_time, l.delete_time, l.version";

/// A listing's fields as written (`None`: left as it is, or the default on create).
#[derive(Debug, Clone, Default)]
pub struct ListingFields {
    /// One line.
    pub title: Option<String>,
    /// What it is.
    pub description: Option<String>,
    /// Category id.
    pub category_id: Option<String>,
    /// Currency, units and nanos.
    pub price: Option<(String, i64, i32)>,
    /// Seconds.
    pub duration_seconds: Option<i32>,
    /// Given remotely.
    pub remote: Option<bool>,
    /// Where.
    pub location: Option<String>,
    /// `Listing.State` number.
    pub state: Option<i16>,
}

/// Builds the event of a write from the row written.
pub type EventOf<'a, M> = &'a (dyn Fn(&ListingRow) -> M + Sync);

/// The category's path, NOT_FOUND for an unknown category.
async fn category_path(
    conn: &mut sqlx::PgConnection,
    category_id: &str,
) -> Result<Vec<String>, StoreError> {
    let path: Option<Vec<String>> =
        sqlx::query_scalar("SELECT path FROM categories WHERE category_id = $1 FOR KEY SHARE")
            .bind(category_id)
            .fetch_optional(conn)
            .await?;
    path.ok_or_else(|| StoreError::NotFound(format!("categories/{category_id}")))
}

impl Store {
    /// Creates a listing of `provider_id` with `fields`; a request id used before returns the
    /// listing it made.
    pub async fn create_listing<M: prost::Name>(
        &self,
        context: &CallContext,
        provider_id: &str,
        fields: &ListingFields,
        request_id: Option<uuid::Uuid>,
        event: EventOf<'_, M>,
    ) -> Result<ListingRow, StoreError> {
        let mut tx = self.begin().await?;
        let listing_id = taskmesh_mesh::aip::new_id();
        let name = format!("providers/{provider_id}/listings/{listing_id}");
        if let Some(request_id) = request_id
            && let Some(first) = taskmesh_mesh::db::claim_request_id(
                &mut tx,
                "CreateListing",
                &context.caller,
                request_id,
                &name,
            )
            .await?
        {
            drop(tx);
            let (provider, listing) = split_listing_name(&first);
            return self
                .listing(provider, listing)
                .await?
                .ok_or(StoreError::NotFound(first));
        }
        let public: Option<bool> =
            sqlx::query_scalar("SELECT public FROM providers WHERE provider_id = $1 FOR SHARE")
                .bind(provider_id)
                .fetch_optional(&mut *tx)
                .await?;
        let public =
            public.ok_or_else(|| StoreError::NotFound(format!("providers/{provider_id}")))?;
        let category_id = fields.category_id.as_deref().unwrap_or_default();
        let path = category_path(&mut tx, category_id).await?;
        let (currency, units, nanos) = fields.price.clone().unwrap_or_default();
        let row: ListingRow = sqlx::query_as(&format!(
            "INSERT INTO listings AS l (provider_id, listing_id, title, description, category_id, \
               category_path, currency_code, price_units, price_nanos, duration_seconds, remote, \
               location, state, provider_public) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             RETURNING {COLUMNS}"
        ))
        .bind(provider_id)
        .bind(&listing_id)
        .bind(fields.title.as_deref().unwrap_or_default())
        .bind(fields.description.as_deref().unwrap_or_default())
        .bind(category_id)
        .bind(&path)
        .bind(currency)
        .bind(units)
        .bind(nanos)
        .bind(fields.duration_seconds.unwrap_or_default())
        .bind(fields.remote.unwrap_or_default())
        .bind(fields.location.as_deref().unwrap_or_default())
        .bind(fields.state.unwrap_or(1))
        .bind(public)
        .fetch_one(&mut *tx)
        .await?;
        self.emit(&mut tx, context, &row.name(), &event(&row))
            .await?;
        self.commit(tx).await?;
        Ok(row)
    }

    /// The listing `listing_id` of `provider_id`, deleted or not.
    pub async fn listing(
        &self,
        provider_id: &str,
        listing_id: &str,
    ) -> Result<Option<ListingRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM listings l WHERE l.provider_id = $1 AND l.listing_id = $2"
        ))
        .bind(provider_id)
        .bind(listing_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A provider's listings, newest first, from `offset`: all of them for the provider
    /// (`everything`), the published ones otherwise; deleted ones only with `show_deleted`.
    pub async fn list_listings(
        &self,
        provider_id: &str,
        everything: bool,
        show_deleted: bool,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ListingRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM listings l WHERE l.provider_id = $1 \
               AND ($2 OR l.state = 2) AND ($3 OR l.delete_time IS NULL) \
             ORDER BY l.create_time DESC, l.listing_id OFFSET $4 LIMIT $5"
        ))
        .bind(provider_id)
        .bind(everything)
        .bind(show_deleted)
        .bind(offset)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Changes a listing whose etag, when given, is current.
    pub async fn update_listing<M: prost::Name>(
        &self,
        context: &CallContext,
        (provider_id, listing_id): (&str, &str),
        etag: &str,
        change: &ListingFields,
        event: EventOf<'_, M>,
    ) -> Result<ListingRow, StoreError> {
        let mut tx = self.begin().await?;
        let current = locked(&mut tx, provider_id, listing_id, etag).await?;
        let path = match change.category_id.as_deref() {
            Some(category_id) if category_id != current.category_id => {
                Some(category_path(&mut tx, category_id).await?)
            }
            _ => None,
        };
        let (currency, units, nanos) = match change.price.clone() {
            Some((currency, units, nanos)) => (Some(currency), Some(units), Some(nanos)),
            None => (None, None, None),
        };
        let row: ListingRow = sqlx::query_as(&format!(
            "UPDATE listings AS l SET title = coalesce($3, title), \
               description = coalesce($4, description), \
               category_id = CASE WHEN $5::text[] IS NULL THEN category_id ELSE $6 END, \
               category_path = coalesce($5, category_path), \
               currency_code = coalesce($7, currency_code), price_units = coalesce($8, price_units), \
               price_nanos = coalesce($9, price_nanos), \
               duration_seconds = coalesce($10, duration_seconds), remote = coalesce($11, remote), \
               location = coalesce($12, location), state = coalesce($13, state), \
               update_time = now(), version = version + 1 \
             WHERE l.provider_id = $1 AND l.listing_id = $2 RETURNING {COLUMNS}"
        ))
        .bind(provider_id)
        .bind(listing_id)
        .bind(change.title.as_deref())
        .bind(change.description.as_deref())
        .bind(path.as_ref())
        .bind(change.category_id.as_deref())
        .bind(currency)
        .bind(units)
        .bind(nanos)
        .bind(change.duration_seconds)
        .bind(change.remote)
        .bind(change.location.as_deref())
        .bind(change.state)
        .fetch_one(&mut *tx)
        .await?;
        self.emit(&mut tx, context, &row.name(), &event(&row))
            .await?;
        self.commit(tx).await?;
        Ok(row)
    }

    /// Deletes (`deleted`) or undeletes a listing whose etag, when given, is current. Deleting a
    /// deleted listing, or undeleting a live one, changes nothing and publishes nothing.
    pub async fn set_listing_deleted<M: prost::Name>(
        &self,
        context: &CallContext,
        (provider_id, listing_id): (&str, &str),
        etag: &str,
        deleted: bool,
        event: EventOf<'_, M>,
    ) -> Result<ListingRow, StoreError> {
        let mut tx = self.begin().await?;
        let current = locked(&mut tx, provider_id, listing_id, etag).await?;
        if current.delete_time.is_some() == deleted {
            return Ok(current);
        }
        let row: ListingRow = sqlx::query_as(&format!(
            "UPDATE listings AS l SET delete_time = CASE WHEN $3 THEN now() END, \
               update_time = now(), version = version + 1 \
             WHERE l.provider_id = $1 AND l.listing_id = $2 RETURNING {COLUMNS}"
        ))
        .bind(provider_id)
        .bind(listing_id)
        .bind(deleted)
        .fetch_one(&mut *tx)
        .await?;
        self.emit(&mut tx, context, &row.name(), &event(&row))
            .await?;
        self.commit(tx).await?;
        Ok(row)
    }
}

/// The listing, locked for a change; ABORTED-worthy when `etag` is given and stale.
async fn locked(
    conn: &mut sqlx::PgConnection,
    provider_id: &str,
    listing_id: &str,
    etag: &str,
) -> Result<ListingRow, StoreError> {
    let current: Option<ListingRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM listings l WHERE l.provider_id = $1 AND l.listing_id = $2 \
         FOR UPDATE"
    ))
    .bind(provider_id)
    .bind(listing_id)
    .fetch_optional(conn)
    .await?;
    let current = current.ok_or_else(|| {
        StoreError::NotFound(format!("providers/{provider_id}/listings/{listing_id}"))
    })?;
    if !etag.is_empty() && etag != current.etag() {
        return Err(StoreError::EtagMismatch {
            name: current.name(),
            current: current.etag(),
        });
    }
    Ok(current)
}

/// The provider and listing ids of `providers/{provider}/listings/{listing}` (empty when it is
/// not one).
pub fn split_listing_name(name: &str) -> (&str, &str) {
    name.strip_prefix("providers/")
        .and_then(|rest| rest.split_once("/listings/"))
        .unwrap_or_default()
}
