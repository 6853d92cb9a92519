//! `taskmesh.notifications.v1.NotificationService`: each caller's own inbox, its stream
//! ([`stream`]) and settings. Every name is checked against the caller before anything is read:
//! another user's inbox is PERMISSION_DENIED, whether or not it exists.

pub mod stream;
pub mod webhooks;

use std::sync::Arc;

use taskmesh_contracts::notifications_v1::notification_service_server::NotificationService;
use taskmesh_contracts::notifications_v1::{
    GetNotificationRequest, GetNotificationSettingsRequest, ListNotificationsRequest,
    ListNotificationsResponse, MarkAllNotificationsReadRequest, MarkAllNotificationsReadResponse,
    MarkNotificationReadRequest, Notification, NotificationSettings, SubscribeNotificationsRequest,
    UpdateNotificationSettingsRequest,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip;
use taskmesh_mesh::names::{ResourcePattern, valid_user_id};
use taskmesh_mesh::status::{invalid_field, required};
use tonic::{Request, Response, Status};

use crate::domain::clock::{self, LocalTimeOfDay};
use crate::store::Store;
use crate::store::settings::SettingsChange;
use stream::Hub;

/// Handles inbox and settings RPCs.
#[derive(Debug, Clone)]
pub struct NotificationsService {
    store: Store,
    hub: Arc<Hub>,
    agenda_time: LocalTimeOfDay,
}

impl NotificationsService {
    /// Handlers over `store`, streaming through `hub`.
    pub fn new(store: Store, hub: Arc<Hub>, agenda_time: LocalTimeOfDay) -> Self {
        Self {
            store,
            hub,
            agenda_time,
        }
    }
}

/// The caller's user id when `parent` (request field `field`) is `users/{caller}`.
fn own_user(context: &CallContext, field: &str, parent: &str) -> Result<String, Status> {
    let user = parent
        .strip_prefix("users/")
        .filter(|u| valid_user_id(u))
        .ok_or_else(|| invalid_field(field, format!("`{parent}` is not users/{{user}}")))?;
    if context.caller == parent {
        Ok(user.to_owned())
    } else {
        Err(Status::permission_denied(format!(
            "{} may only see and change their own notifications",
            context.caller
        )))
    }
}

/// The caller's user id and the notification id of `name`.
fn own_notification(context: &CallContext, name: &str) -> Result<(String, String), Status> {
    let [user, id] = ResourcePattern::of::<Notification>().parse("name", name)?;
    let user = own_user(context, "name", &format!("users/{user}"))?;
    Ok((user, id.to_owned()))
}

/// A cursor as sent (digits, by the contract); empty is `None`.
fn cursor(field: &str, text: &str) -> Result<Option<i64>, Status> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>()
        .map(Some)
        .map_err(|_| invalid_field(field, "not a cursor this service gave"))
}

/// `HH:MM` as minutes of the day (empty is midnight).
fn minutes(field: &str, text: &str) -> Result<i16, Status> {
    if text.is_empty() {
        return Ok(0);
    }
    LocalTimeOfDay::parse(text)
        .map(LocalTimeOfDay::minutes)
        .ok_or_else(|| invalid_field(field, "must be HH:MM"))
}

#[tonic::async_trait]
impl NotificationService for NotificationsService {
    async fn list_notifications(
        &self,
        request: Request<ListNotificationsRequest>,
    ) -> Result<Response<ListNotificationsResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let user = own_user(&context, "parent", &request.parent)?;
        let page = self
            .store
            .list(
                &user,
                &request.filter,
                &request.order_by,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(ListNotificationsResponse {
            notifications: page.notifications,
            next_page_token: page.next_page_token,
            unread_count: page.unread,
        }))
    }

    async fn get_notification(
        &self,
        request: Request<GetNotificationRequest>,
    ) -> Result<Response<Notification>, Status> {
        let context = CallContext::of(&request);
        let (user, id) = own_notification(&context, &request.get_ref().name)?;
        Ok(Response::new(self.store.get(&user, &id).await?))
    }

    async fn mark_notification_read(
        &self,
        request: Request<MarkNotificationReadRequest>,
    ) -> Result<Response<Notification>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let (user, id) = own_notification(&context, &request.name)?;
        Ok(Response::new(
            self.store.mark(&user, &id, !request.unread).await?,
        ))
    }

    async fn mark_all_notifications_read(
        &self,
        request: Request<MarkAllNotificationsReadRequest>,
    ) -> Result<Response<MarkAllNotificationsReadResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let user = own_user(&context, "parent", &request.parent)?;
        let up_to = cursor("cursor", &request.cursor)?;
        let (marked_count, unread_count) = self.store.mark_all(&user, up_to).await?;
        Ok(Response::new(MarkAllNotificationsReadResponse {
            marked_count,
            unread_count,
        }))
    }

    type SubscribeNotificationsStream = stream::NotificationStream;

    async fn subscribe_notifications(
        &self,
        request: Request<SubscribeNotificationsRequest>,
    ) -> Result<Response<Self::SubscribeNotificationsStream>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let user = own_user(&context, "parent", &request.parent)?;
        let after = cursor("cursor", &request.cursor)?;
        let stream = self.hub.subscribe(self.store.clone(), user, after).await?;
        Ok(Response::new(stream))
    }

    async fn get_notification_settings(
        &self,
        request: Request<GetNotificationSettingsRequest>,
    ) -> Result<Response<NotificationSettings>, Status> {
        let context = CallContext::of(&request);
        let [user] =
            ResourcePattern::of::<NotificationSettings>().parse("name", &request.get_ref().name)?;
        let user = own_user(&context, "name", &format!("users/{user}"))?;
        Ok(Response::new(self.store.settings(&user).await?))
    }

    async fn update_notification_settings(
        &self,
        request: Request<UpdateNotificationSettingsRequest>,
    ) -> Result<Response<NotificationSettings>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let settings = request.settings.ok_or_else(|| required("settings"))?;
        let [user] =
            ResourcePattern::of::<NotificationSettings>().parse("settings.name", &settings.name)?;
        let user = own_user(&context, "settings.name", &format!("users/{user}"))?;
        let paths = aip::update_paths(
            request.update_mask.as_ref(),
            &["time_zone", "channels", "quiet_hours", "daily_agenda"],
        )?;
        let mut change = SettingsChange::default();
        for path in paths {
            match path {
                "time_zone" => {
                    if clock::zone(&settings.time_zone).is_none() {
                        return Err(invalid_field(
                            "settings.time_zone",
                            format!("`{}` is not an IANA time zone", settings.time_zone),
                        ));
                    }
                    change.time_zone = Some(if settings.time_zone.is_empty() {
                        "UTC".to_owned()
                    } else {
                        settings.time_zone.clone()
                    });
                }
                "channels" => change.channels = Some(settings.channels.clone()),
                "quiet_hours" => {
                    let window = match &settings.quiet_hours {
                        None => None,
                        Some(q) => {
                            let start = minutes("settings.quiet_hours.start_time", &q.start_time)?;
                            let end = minutes("settings.quiet_hours.end_time", &q.end_time)?;
                            // A window of no length is no window.
                            (start != end).then_some((start, end))
                        }
                    };
                    change.quiet_hours = Some(window);
                }
                "daily_agenda" => change.daily_agenda = Some(settings.daily_agenda),
                _ => {}
            }
        }
        Ok(Response::new(
            self.store
                .update_settings(&user, &settings.etag, change, self.agenda_time)
                .await?,
        ))
    }
}
