//! Reviews and the rating projection. A review is written in one transaction with the change it
//! makes to its listing's and its provider's count and sum of ratings; the listing's row is locked
//! first, so concurrent reviews of one listing add up exactly and never deadlock. The completed
//! bookings that allow a review are learned from the bookings service's events.

use chrono::{DateTime, Utc};
use taskmesh_mesh::CallContext;

use super::{Store, StoreError, violates};
use crate::error::reasons;

/// A stored review.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReviewRow {
    /// The provider's id.
    pub provider_id: String,
    /// The listing's id.
    pub listing_id: String,
    /// Its id.
    pub review_id: String,
    /// `providers/{provider}/bookings/{booking}`.
    pub booking: String,
    /// `users/{user}`.
    pub author: String,
    /// 1 to 5.
    pub rating: i16,
    /// What the customer says.
    pub comment: String,
    /// Written.
    pub create_time: DateTime<Utc>,
    /// Last change.
    pub update_time: DateTime<Utc>,
    /// Changes allowed until then.
    pub edit_deadline: DateTime<Utc>,
    /// Change counter.
    pub version: i64,
}

impl ReviewRow {
    /// `providers/{provider}/listings/{listing}/reviews/{review}`.
    pub fn name(&self) -> String {
        format!(
            "providers/{}/listings/{}/reviews/{}",
            self.provider_id, self.listing_id, self.review_id
        )
    }

    /// The etag.
    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }
}

const COLUMNS: &str = "provider_id, listing_id, review_id, booking, author, rating, comment, \
    create_time, update_time, edit_deadline, version";

/// A listing's count and sum of ratings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Tally {
    /// Reviews.
    pub rating_count: i64,
    /// Sum of their ratings.
    pub rating_sum: i64,
}

/// Builds a review write's event from the review and the listing's new tally.
pub type ReviewEvent<'a, M> = &'a (dyn Fn(&ReviewRow, Tally) -> M + Sync);

/// A new review.
#[derive(Debug, Clone)]
pub struct NewReview {
    /// Provider and listing ids.
    pub listing: (String, String),
    /// The booking reviewed.
    pub booking: String,
    /// `users/{user}`.
    pub author: String,
    /// 1 to 5.
    pub rating: i16,
    /// Text.
    pub comment: String,
    /// Until when it may change.
    pub edit_deadline: DateTime<Utc>,
}

impl Store {
    /// Records that `booking` of `listing` by `customer` completed (again: nothing changes).
    pub async fn booking_completed(
        &self,
        booking: &str,
        listing: &str,
        customer: &str,
        complete_time: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO completed_bookings (booking, listing, customer, complete_time) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (booking) DO NOTHING",
        )
        .bind(booking)
        .bind(listing)
        .bind(customer)
        .bind(complete_time)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Writes `new` and adds it to the tallies.
    pub async fn create_review<M: prost::Name>(
        &self,
        context: &CallContext,
        new: &NewReview,
        event: ReviewEvent<'_, M>,
    ) -> Result<(ReviewRow, Tally), StoreError> {
        let (provider_id, listing_id) = (&new.listing.0, &new.listing.1);
        let listing_name = format!("providers/{provider_id}/listings/{listing_id}");
        let mut tx = self.begin().await?;
        lock_listing(&mut tx, provider_id, listing_id).await?;
        let completed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM completed_bookings \
               WHERE booking = $1 AND listing = $2 AND customer = $3)",
        )
        .bind(&new.booking)
        .bind(&listing_name)
        .bind(&new.author)
        .fetch_one(&mut *tx)
        .await?;
        if !completed {
            return Err(StoreError::Refused {
                reason: reasons::BOOKING_NOT_COMPLETED,
                message: format!(
                    "{} is not a completed booking of {listing_name} by the caller",
                    new.booking
                ),
            });
        }
        let row: ReviewRow = sqlx::query_as(&format!(
            "INSERT INTO reviews (provider_id, listing_id, review_id, booking, author, rating, \
               comment, edit_deadline) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        ))
        .bind(provider_id)
        .bind(listing_id)
        .bind(taskmesh_mesh::aip::new_id())
        .bind(&new.booking)
        .bind(&new.author)
        .bind(new.rating)
        .bind(&new.comment)
        .bind(new.edit_deadline)
        .fetch_one(&mut *tx)
        .await
        .map_err(|err| {
            if violates(&err, "reviews_booking_key") {
                StoreError::Exists {
                    reason: reasons::ALREADY_REVIEWED,
                    name: format!("the review of {}", new.booking),
                }
            } else {
                err.into()
            }
        })?;
        let tally = add(&mut tx, provider_id, listing_id, 1, i64::from(row.rating)).await?;
        self.emit(&mut tx, context, &row.name(), &event(&row, tally))
            .await?;
        self.commit(tx).await?;
        Ok((row, tally))
    }

    /// The review `review_id` of a listing.
    pub async fn review(
        &self,
        (provider_id, listing_id): (&str, &str),
        review_id: &str,
    ) -> Result<Option<ReviewRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM reviews \
             WHERE provider_id = $1 AND listing_id = $2 AND review_id = $3"
        ))
        .bind(provider_id)
        .bind(listing_id)
        .bind(review_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A listing's reviews, newest first, from `offset`.
    pub async fn list_reviews(
        &self,
        (provider_id, listing_id): (&str, &str),
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ReviewRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM reviews WHERE provider_id = $1 AND listing_id = $2 \
             ORDER BY create_time DESC, review_id OFFSET $3 LIMIT $4"
        ))
        .bind(provider_id)
        .bind(listing_id)
        .bind(offset)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Changes a review (whose etag, when given, is current) and the tallies by the difference;
    /// `None` deletes it.
    pub async fn change_review<M: prost::Name>(
        &self,
        context: &CallContext,
        row: &ReviewRow,
        etag: &str,
        change: Option<(Option<i16>, Option<&str>)>,
        event: ReviewEvent<'_, M>,
    ) -> Result<(ReviewRow, Tally), StoreError> {
        let mut tx = self.begin().await?;
        lock_listing(&mut tx, &row.provider_id, &row.listing_id).await?;
        let current: Option<ReviewRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM reviews \
             WHERE provider_id = $1 AND listing_id = $2 AND review_id = $3 FOR UPDATE"
        ))
        .bind(&row.provider_id)
        .bind(&row.listing_id)
        .bind(&row.review_id)
        .fetch_optional(&mut *tx)
        .await?;
        let current = current.ok_or_else(|| StoreError::NotFound(row.name()))?;
        if !etag.is_empty() && etag != current.etag() {
            return Err(StoreError::EtagMismatch {
                name: current.name(),
                current: current.etag(),
            });
        }
        let (after, count, delta) = match change {
            Some((rating, comment)) => {
                let after: ReviewRow = sqlx::query_as(&format!(
                    "UPDATE reviews SET rating = coalesce($4, rating), \
                       comment = coalesce($5, comment), update_time = now(), \
                       version = version + 1 \
                     WHERE provider_id = $1 AND listing_id = $2 AND review_id = $3 \
                     RETURNING {COLUMNS}"
                ))
                .bind(&row.provider_id)
                .bind(&row.listing_id)
                .bind(&row.review_id)
                .bind(rating)
                .bind(comment)
                .fetch_one(&mut *tx)
                .await?;
                let delta = i64::from(after.rating) - i64::from(current.rating);
                (after, 0, delta)
            }
            None => {
                sqlx::query(
                    "DELETE FROM reviews \
                     WHERE provider_id = $1 AND listing_id = $2 AND review_id = $3",
                )
                .bind(&row.provider_id)
                .bind(&row.listing_id)
                .bind(&row.review_id)
                .execute(&mut *tx)
                .await?;
                let delta = -i64::from(current.rating);
                (current, -1, delta)
            }
        };
        let tally = add(&mut tx, &row.provider_id, &row.listing_id, count, delta).await?;
        self.emit(&mut tx, context, &after.name(), &event(&after, tally))
            .await?;
        self.commit(tx).await?;
        Ok((after, tally))
    }
}

/// Locks a listing's row (the order every review write takes: listing, then review, then
/// provider); NOT_FOUND when it does not exist or is deleted.
async fn lock_listing(
    conn: &mut sqlx::PgConnection,
    provider_id: &str,
    listing_id: &str,
) -> Result<(), StoreError> {
    let found: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM listings WHERE provider_id = $1 AND listing_id = $2 \
           AND delete_time IS NULL FOR UPDATE",
    )
    .bind(provider_id)
    .bind(listing_id)
    .fetch_optional(conn)
    .await?;
    found.map(|_| ()).ok_or_else(|| {
        StoreError::NotFound(format!("providers/{provider_id}/listings/{listing_id}"))
    })
}

/// Adds `count` reviews and `sum` stars to a listing's and its provider's tallies; the listing's
/// new tally.
async fn add(
    conn: &mut sqlx::PgConnection,
    provider_id: &str,
    listing_id: &str,
    count: i64,
    sum: i64,
) -> Result<Tally, StoreError> {
    let tally: Tally = sqlx::query_as(
        "UPDATE listings SET rating_count = rating_count + $3, rating_sum = rating_sum + $4 \
         WHERE provider_id = $1 AND listing_id = $2 RETURNING rating_count, rating_sum",
    )
    .bind(provider_id)
    .bind(listing_id)
    .bind(count)
    .bind(sum)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE providers SET rating_count = rating_count + $2, rating_sum = rating_sum + $3 \
         WHERE provider_id = $1",
    )
    .bind(provider_id)
    .bind(count)
    .bind(sum)
    .execute(conn)
    .await?;
    Ok(tally)
}
