//! `AvailabilityService`: a provider's hours, read by anyone who may book it, written by the
//! provider alone.

use taskmesh_contracts::bookings_v1::availability_service_server::AvailabilityService;
use taskmesh_contracts::bookings_v1::{
    Availability, AvailabilityException, DayOfWeek, GetAvailabilityRequest, TimeRange,
    UpdateAvailabilityRequest, WeeklyHours,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip;
use taskmesh_mesh::names::ResourcePattern;
use taskmesh_mesh::time::to_timestamp;
use tonic::{Request, Response, Status};

use super::caller_id;
use crate::domain::slots::Minutes;
use crate::error::Error;
use crate::store::Store;
use crate::store::availability::{AvailabilityRow, StoredException, StoredHours};

/// Serves AvailabilityService from the store.
#[derive(Debug, Clone)]
pub struct AvailabilityServiceImpl {
    store: Store,
}

impl AvailabilityServiceImpl {
    /// Availability in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn proto(row: &AvailabilityRow) -> Availability {
    Availability {
        name: format!("providers/{}/availability", row.provider_id),
        weekly_hours: row
            .weekly_hours
            .iter()
            .map(|hours| WeeklyHours {
                day: i32::from(hours.day),
                hours: Some(TimeRange {
                    start_time: hours.start.clone(),
                    end_time: hours.end.clone(),
                }),
            })
            .collect(),
        exceptions: row
            .exceptions
            .iter()
            .map(|e| AvailabilityException {
                date: e.date.clone(),
                closed: e.closed,
                extra_hours: e
                    .extra
                    .iter()
                    .map(|(start, end)| TimeRange {
                        start_time: start.clone(),
                        end_time: end.clone(),
                    })
                    .collect(),
            })
            .collect(),
        buffer: Some(prost_types::Duration {
            seconds: i64::from(row.buffer_seconds),
            nanos: 0,
        }),
        horizon_days: row.horizon_days,
        minimum_notice: Some(prost_types::Duration {
            seconds: i64::from(row.minimum_notice_seconds),
            nanos: 0,
        }),
        time_zone: String::new(),
        update_time: row.update_time.map(to_timestamp),
        etag: row.etag(),
    }
}

/// Checks a range: well formed and the end after the start.
fn range(field: &str, range: Option<&TimeRange>) -> Result<(String, String), Error> {
    let range = range.ok_or_else(|| Error::invalid(field, "is required"))?;
    Minutes::parse(&range.start_time, &range.end_time)
        .map(|_| (range.start_time.clone(), range.end_time.clone()))
        .ok_or_else(|| Error::invalid(field, "must be HH:MM to a later HH:MM (24:00 at most)"))
}

fn whole_seconds(
    field: &str,
    duration: Option<&prost_types::Duration>,
    max: i64,
) -> Result<i32, Error> {
    let seconds = duration.map(|d| d.seconds).unwrap_or_default();
    if duration.is_some_and(|d| d.nanos != 0) || !(0..=max).contains(&seconds) {
        return Err(Error::invalid(
            field,
            format!("must be whole seconds from 0 to {max}"),
        ));
    }
    Ok(i32::try_from(seconds).unwrap_or(i32::MAX))
}

#[tonic::async_trait]
impl AvailabilityService for AvailabilityServiceImpl {
    async fn get_availability(
        &self,
        request: Request<GetAvailabilityRequest>,
    ) -> Result<Response<Availability>, Status> {
        let name = request.into_inner().name;
        let [provider_id] = ResourcePattern::of::<Availability>()
            .parse("name", &name)
            .map_err(Error::from)?;
        let row = self
            .store
            .availability(provider_id)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(proto(&row)))
    }

    async fn update_availability(
        &self,
        request: Request<UpdateAvailabilityRequest>,
    ) -> Result<Response<Availability>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let change = request.availability.unwrap_or_default();
        let [provider_id] = ResourcePattern::of::<Availability>()
            .parse("availability.name", &change.name)
            .map_err(Error::from)?;
        if provider_id != caller_id(&context.caller) {
            return Err(Error::Denied("only the provider sets its hours".to_owned()).into());
        }
        let paths = aip::update_paths(
            request.update_mask.as_ref(),
            &[
                "weekly_hours",
                "exceptions",
                "buffer",
                "horizon_days",
                "minimum_notice",
            ],
        )
        .map_err(Error::from)?;
        let mut row = self
            .store
            .availability(provider_id)
            .await
            .map_err(Error::from)?;
        for path in paths {
            match path {
                "weekly_hours" => {
                    let mut week = Vec::new();
                    for (i, hours) in change.weekly_hours.iter().enumerate() {
                        let day = DayOfWeek::try_from(hours.day)
                            .ok()
                            .filter(|d| *d != DayOfWeek::Unspecified)
                            .ok_or_else(|| {
                                Error::invalid(
                                    format!("availability.weekly_hours[{i}].day"),
                                    "is not a day",
                                )
                            })?;
                        let (start, end) = range(
                            &format!("availability.weekly_hours[{i}].hours"),
                            hours.hours.as_ref(),
                        )?;
                        week.push(StoredHours {
                            day: u8::try_from(day as i32).unwrap_or_default(),
                            start,
                            end,
                        });
                    }
                    row.weekly_hours = sqlx::types::Json(week);
                }
                "exceptions" => {
                    let mut exceptions = Vec::new();
                    for (i, e) in change.exceptions.iter().enumerate() {
                        if chrono::NaiveDate::parse_from_str(&e.date, "%Y-%m-%d").is_err() {
                            return Err(Error::invalid(
                                format!("availability.exceptions[{i}].date"),
                                "is not a date",
                            )
                            .into());
                        }
                        let mut extra = Vec::new();
                        for (j, hours) in e.extra_hours.iter().enumerate() {
                            extra.push(range(
                                &format!("availability.exceptions[{i}].extra_hours[{j}]"),
                                Some(hours),
                            )?);
                        }
                        exceptions.push(StoredException {
                            date: e.date.clone(),
                            closed: e.closed,
                            extra,
                        });
                    }
                    row.exceptions = sqlx::types::Json(exceptions);
                }
                "buffer" => {
                    row.buffer_seconds =
                        whole_seconds("availability.buffer", change.buffer.as_ref(), 14_400)?;
                }
                "horizon_days" => {
                    row.horizon_days = if change.horizon_days == 0 {
                        60
                    } else {
                        change.horizon_days
                    };
                }
                _ => {
                    row.minimum_notice_seconds = whole_seconds(
                        "availability.minimum_notice",
                        change.minimum_notice.as_ref(),
                        2_592_000,
                    )?;
                }
            }
        }
        let saved = self
            .store
            .put_availability(&row, &change.etag)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(proto(&saved)))
    }
}
