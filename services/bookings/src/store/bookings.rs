//! Bookings. The time a booking holds (its own plus the buffer after it) is a `tstzrange`; the
//! `bookings_no_overlap` exclusion constraint refuses any two held ranges of one provider that
//! overlap, unless one of them is cancelled. So a booking or a reschedule either takes its time
//! or fails with [`StoreError::Taken`], whatever runs beside it; a reschedule is one UPDATE of
//! the row, so the booking never holds two times or none.

use chrono::{DateTime, Utc};
use sqlx::postgres::types::PgRange;
use sqlx::{Postgres, QueryBuilder};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip::{FieldKind, Filter, FilterField, Page};

use super::{Store, StoreError, overlaps};

/// A stored booking.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BookingRow {
    /// The provider.
    pub provider_id: String,
    /// Its id.
    pub booking_id: String,
    /// `providers/{provider}/listings/{listing}`.
    pub listing: String,
    /// The listing's title when booked.
    pub listing_title: String,
    /// `users/{user}`.
    pub customer: String,
    /// Start.
    pub start_time: DateTime<Utc>,
    /// End.
    pub end_time: DateTime<Utc>,
    /// `Booking.State` number.
    pub state: i16,
    /// Changes of time or state.
    pub sequence: i32,
    /// From the customer.
    pub note: String,
    /// Why cancelled.
    pub cancel_reason: String,
    /// Who cancelled.
    pub cancelled_by: String,
    /// Made.
    pub create_time: DateTime<Utc>,
    /// Last change.
    pub update_time: DateTime<Utc>,
    /// Change counter.
    pub version: i64,
}

impl BookingRow {
    /// `providers/{provider}/bookings/{booking}`.
    pub fn name(&self) -> String {
        format!(
            "providers/{}/bookings/{}",
            self.provider_id, self.booking_id
        )
    }

    /// The etag.
    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }
}

const COLUMNS: &str = "provider_id, booking_id, listing, listing_title, customer, start_time, \
    end_time, state, sequence, note, cancel_reason, cancelled_by, create_time, update_time, version";

/// Fields ListBookings' filter may name.
pub const FILTER_FIELDS: &[FilterField] = &[
    FilterField {
        name: "state",
        sql: "state",
        kind: FieldKind::Enum(&[
            ("STATE_REQUESTED", 1),
            ("STATE_CONFIRMED", 2),
            ("STATE_CANCELLED", 3),
            ("STATE_COMPLETED", 4),
        ]),
    },
    FilterField {
        name: "start_time",
        sql: "start_time",
        kind: FieldKind::Timestamp,
    },
    FilterField {
        name: "listing",
        sql: "listing",
        kind: FieldKind::Text,
    },
];

/// A booking to make.
#[derive(Debug, Clone)]
pub struct NewBooking {
    /// The provider.
    pub provider_id: String,
    /// The listing.
    pub listing: String,
    /// Its title.
    pub listing_title: String,
    /// `users/{user}`.
    pub customer: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
    /// The provider's buffer now.
    pub buffer_seconds: i32,
    /// From the customer.
    pub note: String,
}

/// A change to a booking: state, time, cancellation.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// New state number.
    pub state: Option<i16>,
    /// New start, end and buffer.
    pub time: Option<(DateTime<Utc>, DateTime<Utc>, i32)>,
    /// Reason and who cancelled.
    pub cancelled: Option<(String, String)>,
}

/// Whose bookings a list shows.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    /// A provider's (id).
    Provider(&'a str),
    /// A customer's (`users/{user}`).
    Customer(&'a str),
}

fn held(start: DateTime<Utc>, end: DateTime<Utc>, buffer_seconds: i32) -> PgRange<DateTime<Utc>> {
    let until = end + chrono::Duration::seconds(i64::from(buffer_seconds));
    PgRange::from(start..until)
}

/// Builds a write's event from the row written.
pub type EventOf<'a, M> = &'a (dyn Fn(&BookingRow) -> M + Sync);

impl Store {
    /// Makes `new` (requested); a request id used before returns the booking it made.
    pub async fn create_booking<M: prost::Name>(
        &self,
        context: &CallContext,
        new: &NewBooking,
        request_id: Option<uuid::Uuid>,
        event: EventOf<'_, M>,
    ) -> Result<BookingRow, StoreError> {
        let mut tx = self.begin().await?;
        let booking_id = taskmesh_mesh::aip::new_id();
        let name = format!("providers/{}/bookings/{booking_id}", new.provider_id);
        if let Some(request_id) = request_id
            && let Some(first) = taskmesh_mesh::db::claim_request_id(
                &mut tx,
                "CreateBooking",
                &context.caller,
                request_id,
                &name,
            )
            .await?
        {
            drop(tx);
            let (provider, booking) = split_name(&first);
            return self
                .booking(provider, booking)
                .await?
                .ok_or(StoreError::NotFound(first));
        }
        let row: BookingRow = sqlx::query_as(&format!(
            "INSERT INTO bookings (provider_id, booking_id, listing, listing_title, customer, \
               start_time, end_time, held, state, note) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9) RETURNING {COLUMNS}"
        ))
        .bind(&new.provider_id)
        .bind(&booking_id)
        .bind(&new.listing)
        .bind(&new.listing_title)
        .bind(&new.customer)
        .bind(new.start)
        .bind(new.end)
        .bind(held(new.start, new.end, new.buffer_seconds))
        .bind(&new.note)
        .fetch_one(&mut *tx)
        .await
        .map_err(|err| {
            if overlaps(&err) {
                StoreError::Taken(new.listing.clone())
            } else {
                err.into()
            }
        })?;
        self.emit(&mut tx, context, &row.name(), &event(&row))
            .await?;
        self.commit(tx).await?;
        Ok(row)
    }

    /// The booking `booking_id` of `provider_id`.
    pub async fn booking(
        &self,
        provider_id: &str,
        booking_id: &str,
    ) -> Result<Option<BookingRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM bookings WHERE provider_id = $1 AND booking_id = $2"
        ))
        .bind(provider_id)
        .bind(booking_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The ranges held by `provider_id`'s live bookings that reach into `from..to`, each as
    /// start and held end.
    pub async fn held(
        &self,
        provider_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>, StoreError> {
        let rows: Vec<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT lower(held), upper(held) FROM bookings \
             WHERE provider_id = $1 AND state <> 3 AND held && tstzrange($2, $3)",
        )
        .bind(provider_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// A provider's or a customer's bookings matching `filter`, by start, one `page`.
    pub async fn list_bookings(
        &self,
        owner: Owner<'_>,
        filter: &Filter,
        page: Page,
    ) -> Result<Vec<BookingRow>, StoreError> {
        let mut query: QueryBuilder<'_, Postgres> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM bookings WHERE "));
        match owner {
            Owner::Provider(provider_id) => {
                query.push("provider_id = ");
                query.push_bind(provider_id.to_owned());
            }
            Owner::Customer(customer) => {
                query.push("customer = ");
                query.push_bind(customer.to_owned());
            }
        }
        filter.push_and(&mut query);
        page.push_sql(&mut query, "start_time, provider_id, booking_id");
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    /// Applies `change` to the booking if it is still at `version` (the one its checks read);
    /// ABORTED-worthy otherwise. A new time the constraint refuses leaves the booking as it was.
    pub async fn change_booking<M: prost::Name>(
        &self,
        context: &CallContext,
        current: &BookingRow,
        change: &Change,
        event: EventOf<'_, M>,
    ) -> Result<BookingRow, StoreError> {
        let mut tx = self.begin().await?;
        let (start, end, range) = match change.time {
            Some((start, end, buffer)) => (Some(start), Some(end), Some(held(start, end, buffer))),
            None => (None, None, None),
        };
        let (reason, by) = change.cancelled.clone().unwrap_or_default();
        let row: Option<BookingRow> = sqlx::query_as(&format!(
            "UPDATE bookings SET state = coalesce($4, state), \
               start_time = coalesce($5, start_time), end_time = coalesce($6, end_time), \
               held = coalesce($7, held), \
               cancel_reason = CASE WHEN $8 THEN $9 ELSE cancel_reason END, \
               cancelled_by = CASE WHEN $8 THEN $10 ELSE cancelled_by END, \
               sequence = sequence + 1, update_time = now(), version = version + 1 \
             WHERE provider_id = $1 AND booking_id = $2 AND version = $3 RETURNING {COLUMNS}"
        ))
        .bind(&current.provider_id)
        .bind(&current.booking_id)
        .bind(current.version)
        .bind(change.state)
        .bind(start)
        .bind(end)
        .bind(range)
        .bind(change.cancelled.is_some())
        .bind(reason)
        .bind(by)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|err| {
            if overlaps(&err) {
                StoreError::Taken(current.name())
            } else {
                err.into()
            }
        })?;
        let Some(row) = row else {
            drop(tx);
            let now = self
                .booking(&current.provider_id, &current.booking_id)
                .await?
                .ok_or_else(|| StoreError::NotFound(current.name()))?;
            return Err(StoreError::EtagMismatch {
                name: now.name(),
                current: now.etag(),
            });
        };
        self.emit(&mut tx, context, &row.name(), &event(&row))
            .await?;
        self.commit(tx).await?;
        Ok(row)
    }

    /// Every booking of `user_id`, as provider or as customer (`users/{user}`), newest start
    /// first, at most `limit`.
    pub async fn bookings_of_user(
        &self,
        user_id: &str,
        limit: i64,
    ) -> Result<Vec<BookingRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM bookings WHERE provider_id = $1 OR customer = $2 \
             ORDER BY start_time DESC LIMIT $3"
        ))
        .bind(user_id)
        .bind(format!("users/{user_id}"))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// The provider and booking ids of `providers/{provider}/bookings/{booking}` (empty when it is
/// not one).
pub fn split_name(name: &str) -> (&str, &str) {
    name.strip_prefix("providers/")
        .and_then(|rest| rest.split_once("/bookings/"))
        .unwrap_or_default()
}
