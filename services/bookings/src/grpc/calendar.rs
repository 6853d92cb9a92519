//! `CalendarService`: each user's feed address (made on first ask, rotated on demand) and the
//! feed itself, read with the secret address alone.

use taskmesh_contracts::bookings_v1::calendar_service_server::CalendarService;
use taskmesh_contracts::bookings_v1::{
    CalendarFeed, DownloadCalendarFeedRequest, GetCalendarFeedRequest, RotateCalendarFeedRequest,
};
use taskmesh_contracts::google::api::HttpBody;
use taskmesh_mesh::CallContext;
use taskmesh_mesh::names::ResourcePattern;
use taskmesh_mesh::time::to_timestamp;
use tonic::{Request, Response, Status};

use super::caller_id;
use crate::domain::calendar::{Entry, TaskEntry, feed};
use crate::domain::state::State;
use crate::error::Error;
use crate::store::{Store, StoreError};

/// The most bookings, and the most tasks, a feed carries (the latest).
const FEED_LIMIT: i64 = 1000;

/// Serves CalendarService from the store.
#[derive(Debug, Clone)]
pub struct CalendarServiceImpl {
    store: Store,
}

impl CalendarServiceImpl {
    /// Feeds from `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The user id of `users/{user}/calendarFeed`, when it is the caller's.
    fn own<'a>(context: &CallContext, name: &'a str) -> Result<&'a str, Error> {
        let [user] = ResourcePattern::of::<CalendarFeed>().parse("name", name)?;
        if user == caller_id(&context.caller) {
            Ok(user)
        } else {
            Err(Error::Denied(
                "a calendar feed is its user's alone".to_owned(),
            ))
        }
    }
}

fn proto(user: &str, token: &str, rotated: chrono::DateTime<chrono::Utc>) -> CalendarFeed {
    CalendarFeed {
        name: format!("users/{user}/calendarFeed"),
        path: format!("/v1/calendarFeeds/{token}:ics"),
        rotate_time: Some(to_timestamp(rotated)),
    }
}

#[tonic::async_trait]
impl CalendarService for CalendarServiceImpl {
    async fn get_calendar_feed(
        &self,
        request: Request<GetCalendarFeedRequest>,
    ) -> Result<Response<CalendarFeed>, Status> {
        let context = CallContext::of(&request);
        let name = request.into_inner().name;
        let user = Self::own(&context, &name)?;
        let (token, rotated) = self.store.feed_token(user).await.map_err(Error::from)?;
        Ok(Response::new(proto(user, &token, rotated)))
    }

    async fn rotate_calendar_feed(
        &self,
        request: Request<RotateCalendarFeedRequest>,
    ) -> Result<Response<CalendarFeed>, Status> {
        let context = CallContext::of(&request);
        let name = request.into_inner().name;
        let user = Self::own(&context, &name)?;
        let (token, rotated) = self
            .store
            .rotate_feed_token(user)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(proto(user, &token, rotated)))
    }

    async fn download_calendar_feed(
        &self,
        request: Request<DownloadCalendarFeedRequest>,
    ) -> Result<Response<HttpBody>, Status> {
        let name = request.into_inner().name;
        let token = name.strip_prefix("calendarFeeds/").unwrap_or_default();
        // The same answer for a token that never was and one rotated away.
        let unknown = || Error::from(StoreError::NotFound("calendarFeeds/…".to_owned()));
        let user = self
            .store
            .feed_owner(token)
            .await
            .map_err(Error::from)?
            .ok_or_else(unknown)?;
        let rows = self
            .store
            .bookings_of_user(&user, FEED_LIMIT)
            .await
            .map_err(Error::from)?;
        let entries: Vec<Entry> = rows
            .iter()
            .filter_map(|row| {
                let state = State::from_number(row.state)?;
                let (summary, other) = if row.provider_id == user {
                    (
                        format!("{} with {}", row.listing_title, row.customer),
                        row.customer.clone(),
                    )
                } else {
                    (
                        row.listing_title.clone(),
                        format!("providers/{}", row.provider_id),
                    )
                };
                Some(Entry {
                    booking: row.name(),
                    summary,
                    description: format!(
                        "{} ({}), booked with {other}",
                        row.listing_title, row.listing
                    ),
                    start: row.start_time,
                    end: row.end_time,
                    state,
                    sequence: u32::try_from(row.sequence).unwrap_or(0),
                    changed: row.update_time,
                })
            })
            .collect();
        let tasks: Vec<TaskEntry> = self
            .store
            .tasks_of_user(&format!("users/{user}"), FEED_LIMIT)
            .await
            .map_err(Error::from)?
            .into_iter()
            .map(|task| TaskEntry {
                title: task.title,
                due: task.due_time,
                done: task.done,
                sequence: u32::try_from(task.version).unwrap_or(0),
                task: task.task,
            })
            .collect();
        let text = feed(&format!("taskmesh: users/{user}"), &entries, &tasks);
        Ok(Response::new(HttpBody {
            content_type: "text/calendar; charset=utf-8".to_owned(),
            data: text.into_bytes(),
            extensions: Vec::new(),
        }))
    }
}
