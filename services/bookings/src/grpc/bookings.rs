//! `BookingService`: free slots, booking, and the booking's life. The rules of the provider's
//! availability are checked here; overlaps with other bookings are refused by the database.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use taskmesh_clients::{Bookable, MarketplaceClient};
use taskmesh_contracts::bookings_v1::booking_service_server::BookingService;
use taskmesh_contracts::bookings_v1::{
    Booking, BookingCancelled, BookingCompleted, BookingConfirmed, BookingRequested,
    BookingRescheduled, CancelBookingRequest, CompleteBookingRequest, ConfirmBookingRequest,
    CreateBookingRequest, GetBookingRequest, ListBookingsRequest, ListBookingsResponse,
    ListSlotsRequest, ListSlotsResponse, RescheduleBookingRequest, Slot,
};
use taskmesh_mesh::names::ResourcePattern;
use taskmesh_mesh::time::{from_timestamp, to_timestamp};
use taskmesh_mesh::{CallContext, aip};
use tonic::{Request, Response, Status};

use super::{booking_proto, caller_id};
use crate::domain::slots::{Availability, Search, instant};
use crate::domain::state::{Action, Party, State};
use crate::error::{Error, reasons};
use crate::store::bookings::{BookingRow, Change, FILTER_FIELDS, NewBooking, Owner};
use crate::store::{Store, StoreError};

/// Serves BookingService from the store.
#[derive(Debug, Clone)]
pub struct BookingsService {
    store: Store,
    marketplace: MarketplaceClient,
    step: Duration,
    max_days: i64,
}

impl BookingsService {
    /// Bookings in `store`, listings from `marketplace`; slots `step` apart, ranges of at most
    /// `max_days`.
    pub fn new(
        store: Store,
        marketplace: MarketplaceClient,
        step: Duration,
        max_days: i64,
    ) -> Self {
        Self {
            store,
            marketplace,
            step,
            max_days,
        }
    }

    /// The listing `name` if the caller may see it and it can be booked.
    async fn bookable(
        &self,
        context: &CallContext,
        field: &str,
        name: &str,
    ) -> Result<Bookable, Error> {
        ResourcePattern::of::<taskmesh_contracts::marketplace_v1::Listing>()
            .parse::<2>(field, name)?;
        let listing = self
            .marketplace
            .listing(context, name)
            .await
            .map_err(Error::Upstream)?
            .ok_or_else(|| StoreError::NotFound(name.to_owned()))?;
        if !listing.published {
            return Err(Error::precondition(
                reasons::LISTING_NOT_BOOKABLE,
                format!("{name} is not published"),
            ));
        }
        Ok(listing)
    }

    /// The provider's rules, on its clock.
    async fn rules(&self, provider_id: &str, zone: &str) -> Result<Availability, Error> {
        let zone: Tz = zone.parse().unwrap_or(Tz::UTC);
        Ok(self.store.availability(provider_id).await?.rules(zone))
    }

    /// The booking `name` and who the caller is to it; NOT_FOUND for anyone else.
    async fn party(&self, context: &CallContext, name: &str) -> Result<(BookingRow, Party), Error> {
        let [provider_id, booking_id] = ResourcePattern::of::<Booking>().parse("name", name)?;
        let row = self
            .store
            .booking(provider_id, booking_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(name.to_owned()))?;
        if row.provider_id == caller_id(&context.caller) {
            Ok((row, Party::Provider))
        } else if row.customer == context.caller {
            Ok((row, Party::Customer))
        } else {
            Err(StoreError::NotFound(name.to_owned()).into())
        }
    }

    /// Applies `action` by `party` to `row` (as read by [`party`](Self::party); a change made
    /// since is ABORTED), with `change` and the event `event`.
    async fn act<M: prost::Name>(
        &self,
        context: &CallContext,
        (row, party): (BookingRow, Party),
        action: Action,
        mut change: Change,
        event: &(dyn Fn(&BookingRow) -> M + Sync),
    ) -> Result<Response<Booking>, Status> {
        let state = State::from_number(row.state).ok_or_else(|| {
            Error::precondition(reasons::WRONG_STATE, "the booking's state is unknown")
        })?;
        let next = action
            .apply(state, party, Utc::now() >= row.start_time)
            .map_err(Error::from)?;
        change.state = Some(next as i16);
        if action == Action::Cancel {
            let (reason, _) = change.cancelled.clone().unwrap_or_default();
            change.cancelled = Some((reason, context.caller.clone()));
        }
        let row = self
            .store
            .change_booking(context, &row, &change, event)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(booking_proto(&row)))
    }
}

/// The UTC instant of midnight starting `date` on `zone`'s clock.
fn midnight(zone: Tz, date: NaiveDate) -> DateTime<Utc> {
    instant(zone, date, 0)
}

#[tonic::async_trait]
impl BookingService for BookingsService {
    async fn list_slots(
        &self,
        request: Request<ListSlotsRequest>,
    ) -> Result<Response<ListSlotsResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        // The listing first: one the caller cannot see is NOT_FOUND whatever else was asked.
        let [provider_id, _] = ResourcePattern::of::<taskmesh_contracts::marketplace_v1::Listing>()
            .parse("listing", &request.listing)
            .map_err(Error::from)?;
        let listing = self.bookable(&context, "listing", &request.listing).await?;
        let zone: Tz = match request.time_zone.as_str() {
            "" => Tz::UTC,
            zone => zone.parse().map_err(|_| {
                Error::invalid("time_zone", format!("`{zone}` is not an IANA time zone"))
            })?,
        };
        let date = |field: &str, text: &str| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| Error::invalid(field, "is not a date"))
        };
        let (first, last) = (
            date("start_date", &request.start_date)?,
            date("end_date", &request.end_date)?,
        );
        if last < first || (last - first).num_days() >= self.max_days {
            return Err(Error::invalid(
                "end_date",
                format!(
                    "must be on or after start_date, at most {} days in all",
                    self.max_days
                ),
            )
            .into());
        }
        let rules = self.rules(provider_id, &listing.time_zone).await?;
        let from = midnight(zone, first);
        let to = midnight(zone, last + Duration::days(1));
        let held = self
            .store
            .held(
                provider_id,
                from - Duration::days(1),
                to + Duration::days(1),
            )
            .await
            .map_err(Error::from)?;
        let search = Search {
            duration: Duration::seconds(listing.duration_seconds),
            step: self.step,
            from,
            to,
            now: Utc::now(),
        };
        let slots = rules
            .free_slots(&search, &held)
            .into_iter()
            .map(|start| Slot {
                start_time: Some(to_timestamp(start)),
                end_time: Some(to_timestamp(start + search.duration)),
                local_start_time: zone.from_utc_datetime(&start.naive_utc()).to_rfc3339(),
            })
            .collect();
        Ok(Response::new(ListSlotsResponse {
            slots,
            provider_time_zone: listing.time_zone,
        }))
    }

    async fn create_booking(
        &self,
        request: Request<CreateBookingRequest>,
    ) -> Result<Response<Booking>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let [provider_id] = ResourcePattern::of::<taskmesh_contracts::marketplace_v1::Provider>()
            .parse("parent", &request.parent)
            .map_err(Error::from)?;
        let booking = request.booking.unwrap_or_default();
        if !booking
            .listing
            .starts_with(&format!("{}/listings/", request.parent))
        {
            // The parent has no such listing.
            return Err(Error::from(StoreError::NotFound(booking.listing)).into());
        }
        let start = from_timestamp(booking.start_time)
            .ok_or_else(|| Error::invalid("booking.start_time", "is required"))?;
        let listing = self
            .bookable(&context, "booking.listing", &booking.listing)
            .await?;
        let rules = self.rules(provider_id, &listing.time_zone).await?;
        let duration = Duration::seconds(listing.duration_seconds);
        if !rules.allows(start, duration, self.step, Utc::now()) {
            return Err(Error::precondition(
                reasons::SLOT_UNAVAILABLE,
                "the start is not a slot of the provider's hours (see ListSlots)",
            )
            .into());
        }
        let new = NewBooking {
            provider_id: provider_id.to_owned(),
            listing: listing.name.clone(),
            listing_title: listing.title.clone(),
            customer: context.caller.clone(),
            start,
            end: start + duration,
            buffer_seconds: i32::try_from(rules.buffer.num_seconds()).unwrap_or(0),
            note: booking.note,
        };
        let row = self
            .store
            .create_booking(
                &context,
                &new,
                aip::request_id(&request.request_id),
                &|row| BookingRequested {
                    booking: Some(booking_proto(row)),
                },
            )
            .await
            .map_err(Error::from)?;
        Ok(Response::new(booking_proto(&row)))
    }

    async fn get_booking(
        &self,
        request: Request<GetBookingRequest>,
    ) -> Result<Response<Booking>, Status> {
        let context = CallContext::of(&request);
        let (row, _) = self.party(&context, &request.into_inner().name).await?;
        Ok(Response::new(booking_proto(&row)))
    }

    async fn list_bookings(
        &self,
        request: Request<ListBookingsRequest>,
    ) -> Result<Response<ListBookingsResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let owner = if let Some(provider_id) = request.parent.strip_prefix("providers/") {
            if provider_id != caller_id(&context.caller) {
                return Err(
                    Error::Denied("only the provider lists its bookings".to_owned()).into(),
                );
            }
            Owner::Provider(provider_id)
        } else if request.parent.starts_with("users/") {
            if request.parent != context.caller {
                return Err(
                    Error::Denied("only the customer lists their bookings".to_owned()).into(),
                );
            }
            Owner::Customer(&request.parent)
        } else {
            return Err(Error::invalid(
                "parent",
                "must be `providers/{provider}` or `users/{user}`",
            )
            .into());
        };
        let filter = aip::parse_filter(&request.filter, FILTER_FIELDS).map_err(Error::from)?;
        let fingerprint = aip::fingerprint(&[&request.parent, &request.filter]);
        let page =
            aip::page(request.page_size, &request.page_token, &fingerprint).map_err(Error::from)?;
        let rows = self
            .store
            .list_bookings(owner, &filter, page)
            .await
            .map_err(Error::from)?;
        let (rows, next_page_token) = aip::split_page(rows, page, &fingerprint);
        Ok(Response::new(ListBookingsResponse {
            bookings: rows.iter().map(booking_proto).collect(),
            next_page_token,
        }))
    }

    async fn confirm_booking(
        &self,
        request: Request<ConfirmBookingRequest>,
    ) -> Result<Response<Booking>, Status> {
        let context = CallContext::of(&request);
        let name = request.into_inner().name;
        self.act(
            &context,
            self.party(&context, &name).await?,
            Action::Confirm,
            Change::default(),
            &|row| BookingConfirmed {
                booking: Some(booking_proto(row)),
            },
        )
        .await
    }

    async fn cancel_booking(
        &self,
        request: Request<CancelBookingRequest>,
    ) -> Result<Response<Booking>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let change = Change {
            cancelled: Some((request.reason, String::new())),
            ..Change::default()
        };
        self.act(
            &context,
            self.party(&context, &request.name).await?,
            Action::Cancel,
            change,
            &|row| BookingCancelled {
                booking: Some(booking_proto(row)),
            },
        )
        .await
    }

    async fn reschedule_booking(
        &self,
        request: Request<RescheduleBookingRequest>,
    ) -> Result<Response<Booking>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let read = self.party(&context, &request.name).await?;
        let row = &read.0;
        if !request.etag.is_empty() && request.etag != row.etag() {
            return Err(Error::from(StoreError::EtagMismatch {
                name: row.name(),
                current: row.etag(),
            })
            .into());
        }
        let start = from_timestamp(request.start_time)
            .ok_or_else(|| Error::invalid("start_time", "is required"))?;
        let listing = self.bookable(&context, "name", &row.listing).await?;
        let rules = self.rules(&row.provider_id, &listing.time_zone).await?;
        let duration = row.end_time - row.start_time;
        if !rules.allows(start, duration, self.step, Utc::now()) {
            return Err(Error::precondition(
                reasons::SLOT_UNAVAILABLE,
                "the new start is not a slot of the provider's hours (see ListSlots)",
            )
            .into());
        }
        let previous = row.start_time;
        let change = Change {
            time: Some((
                start,
                start + duration,
                i32::try_from(rules.buffer.num_seconds()).unwrap_or(0),
            )),
            ..Change::default()
        };
        self.act(&context, read, Action::Reschedule, change, &|row| {
            BookingRescheduled {
                booking: Some(booking_proto(row)),
                previous_start_time: Some(to_timestamp(previous)),
            }
        })
        .await
    }

    async fn complete_booking(
        &self,
        request: Request<CompleteBookingRequest>,
    ) -> Result<Response<Booking>, Status> {
        let context = CallContext::of(&request);
        let name = request.into_inner().name;
        self.act(
            &context,
            self.party(&context, &name).await?,
            Action::Complete,
            Change::default(),
            &|row| BookingCompleted {
                booking: Some(booking_proto(row)),
            },
        )
        .await
    }
}
