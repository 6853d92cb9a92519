//! The inbox, its stream and the settings, as a user sees them.

use std::time::Duration;

use futures::StreamExt;
use prost_types::FieldMask;
use taskmesh_contracts::notifications_v1::{
    Channel, ChannelSetting, GetNotificationRequest, GetNotificationSettingsRequest,
    ListNotificationsRequest, MarkAllNotificationsReadRequest, MarkNotificationReadRequest,
    Notification, NotificationKind, NotificationSettings, QuietHours,
    SubscribeNotificationsRequest, UpdateNotificationSettingsRequest,
};
use taskmesh_contracts::projects_v1::Role;
use tonic::Code;

use crate::helpers::{OWNER, PATIENCE, World};

#[tokio::test]
async fn an_inbox_lists_filters_and_marks_read_and_is_its_owners_alone() {
    let world = World::new().await;
    world.add_member("bob", Role::Member).await;
    for n in 0..3 {
        world.create_task(OWNER, &format!("Task {n}"), "bob").await;
    }
    let inbox = world.wait_inbox("bob", 4).await;
    assert_eq!(inbox.len(), 4);
    // Newest first, each with a cursor above the next one's.
    let cursors: Vec<i64> = inbox
        .iter()
        .map(|n| n.cursor.parse().expect("cursor"))
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] > w[1]), "{cursors:?}");

    let mut bob = world.inbox_of("bob");
    let read = bob
        .mark_notification_read(MarkNotificationReadRequest {
            name: inbox[0].name.clone(),
            unread: false,
        })
        .await
        .expect("mark read")
        .into_inner();
    assert!(read.read && read.read_time.is_some());
    let unread = bob
        .list_notifications(ListNotificationsRequest {
            parent: "users/bob".into(),
            filter: "read = false AND kind = TASK_ASSIGNED".into(),
            ..Default::default()
        })
        .await
        .expect("list unread")
        .into_inner();
    assert_eq!(unread.notifications.len(), 2);
    assert_eq!(unread.unread_count, 3);
    let paged = bob
        .list_notifications(ListNotificationsRequest {
            parent: "users/bob".into(),
            page_size: 3,
            order_by: "create_time".into(),
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    assert_eq!(paged.notifications[0].kind(), NotificationKind::MemberAdded);
    assert!(!paged.next_page_token.is_empty());

    // Everything up to the second newest (the newest is read already).
    let all = bob
        .mark_all_notifications_read(MarkAllNotificationsReadRequest {
            parent: "users/bob".into(),
            cursor: inbox[1].cursor.clone(),
        })
        .await
        .expect("mark all")
        .into_inner();
    assert_eq!((all.marked_count, all.unread_count), (3, 0));
    let got = bob
        .get_notification(GetNotificationRequest {
            name: inbox[3].name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert!(got.read);
    // Marked unread again: it counts as unread once more.
    let again = bob
        .mark_notification_read(MarkNotificationReadRequest {
            name: inbox[3].name.clone(),
            unread: true,
        })
        .await
        .expect("mark unread")
        .into_inner();
    assert!(!again.read && again.read_time.is_none());
    let listed = bob
        .list_notifications(ListNotificationsRequest {
            parent: "users/bob".into(),
            filter: "read = false".into(),
            ..Default::default()
        })
        .await
        .expect("list unread")
        .into_inner();
    assert_eq!(listed.unread_count, 1);
    assert_eq!(listed.notifications.len(), 1);
    assert_eq!(listed.notifications[0].name, inbox[3].name);

    // Someone else's inbox: refused, whether the notification exists or not.
    let mut ann = world.inbox_of(OWNER);
    let status = ann
        .get_notification(GetNotificationRequest {
            name: inbox[0].name.clone(),
        })
        .await
        .expect_err("not hers");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = ann
        .list_notifications(ListNotificationsRequest {
            parent: "users/bob".into(),
            ..Default::default()
        })
        .await
        .expect_err("not hers");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = bob
        .list_notifications(ListNotificationsRequest {
            parent: "users/bob".into(),
            filter: "colour = blue".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad filter");
    assert_eq!(status.code(), Code::InvalidArgument);
}

async fn next(stream: &mut tonic::Streaming<Notification>) -> Notification {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("a notification in time")
        .expect("the stream goes on")
        .expect("no error")
}

#[tokio::test]
async fn a_stream_resumed_from_its_cursor_misses_nothing_and_repeats_nothing() {
    let world = World::new().await;
    world.add_member("bob", Role::Member).await;
    world.wait_inbox("bob", 1).await;
    let mut stream = world
        .inbox_of("bob")
        .subscribe_notifications(SubscribeNotificationsRequest {
            parent: "users/bob".into(),
            cursor: String::new(),
        })
        .await
        .expect("subscribe")
        .into_inner();
    for n in 0..3 {
        world.create_task(OWNER, &format!("Live {n}"), "bob").await;
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next(&mut stream).await);
    }
    assert_eq!(
        seen.iter().map(|n| n.title.clone()).collect::<Vec<_>>(),
        [
            "ANN assigned you “Live 0”",
            "ANN assigned you “Live 1”",
            "ANN assigned you “Live 2”"
        ]
        .map(|t| t.replace("ANN", OWNER))
    );
    let cursor = seen[2].cursor.clone();
    drop(stream);

    // While away: two more.
    for n in 3..5 {
        world.create_task(OWNER, &format!("Away {n}"), "bob").await;
    }
    world.wait_inbox("bob", 6).await;
    let mut resumed = world
        .inbox_of("bob")
        .subscribe_notifications(SubscribeNotificationsRequest {
            parent: "users/bob".into(),
            cursor,
        })
        .await
        .expect("resume")
        .into_inner();
    let missed = [next(&mut resumed).await, next(&mut resumed).await];
    assert!(missed[0].title.ends_with("“Away 3”"), "{missed:?}");
    assert!(missed[1].title.ends_with("“Away 4”"), "{missed:?}");
    world.create_task(OWNER, "After", "bob").await;
    let live = next(&mut resumed).await;
    assert!(live.title.ends_with("“After”"), "{live:?}");
    // Nothing else comes.
    assert!(
        tokio::time::timeout(Duration::from_millis(700), resumed.next())
            .await
            .is_err()
    );

    // Another user's stream is refused.
    let status = world
        .inbox_of(OWNER)
        .subscribe_notifications(SubscribeNotificationsRequest {
            parent: "users/bob".into(),
            cursor: String::new(),
        })
        .await
        .expect_err("not hers");
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn settings_start_from_defaults_and_change_under_their_etag() {
    let world = World::new().await;
    let mut ann = world.inbox_of(OWNER);
    let settings = ann
        .get_notification_settings(GetNotificationSettingsRequest {
            name: format!("users/{OWNER}/notificationSettings"),
        })
        .await
        .expect("defaults")
        .into_inner();
    assert_eq!(settings.time_zone, "UTC");
    assert!(settings.daily_agenda);
    assert_eq!(settings.channels.len(), 19 * 3);
    let enabled = |s: &NotificationSettings, kind: NotificationKind, channel: Channel| {
        s.channels
            .iter()
            .find(|c| c.kind() == kind && c.channel() == channel)
            .expect("every pair")
            .enabled
    };
    assert!(enabled(
        &settings,
        NotificationKind::TaskAssigned,
        Channel::Email
    ));
    assert!(!enabled(
        &settings,
        NotificationKind::DailyAgenda,
        Channel::Email
    ));

    let changed = ann
        .update_notification_settings(UpdateNotificationSettingsRequest {
            settings: Some(NotificationSettings {
                name: format!("users/{OWNER}/notificationSettings"),
                time_zone: "Europe/Berlin".into(),
                quiet_hours: Some(QuietHours {
                    start_time: "22:00".into(),
                    end_time: "07:00".into(),
                }),
                channels: vec![ChannelSetting {
                    kind: NotificationKind::DailyAgenda as i32,
                    channel: Channel::Email as i32,
                    enabled: true,
                }],
                etag: settings.etag.clone(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(changed.time_zone, "Europe/Berlin");
    assert_eq!(
        changed.quiet_hours.as_ref().map(|q| q.end_time.as_str()),
        Some("07:00")
    );
    assert!(enabled(
        &changed,
        NotificationKind::DailyAgenda,
        Channel::Email
    ));
    assert!(enabled(
        &changed,
        NotificationKind::TaskAssigned,
        Channel::Email
    ));
    assert_ne!(changed.etag, settings.etag);

    let stale = ann
        .update_notification_settings(UpdateNotificationSettingsRequest {
            settings: Some(NotificationSettings {
                name: format!("users/{OWNER}/notificationSettings"),
                daily_agenda: false,
                etag: settings.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["daily_agenda".into()],
            }),
        })
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    let bad_zone = ann
        .update_notification_settings(UpdateNotificationSettingsRequest {
            settings: Some(NotificationSettings {
                name: format!("users/{OWNER}/notificationSettings"),
                time_zone: "Mars/Olympus".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["time_zone".into()],
            }),
        })
        .await
        .expect_err("no such zone");
    assert_eq!(bad_zone.code(), Code::InvalidArgument);
    let others = world
        .inbox_of("bob")
        .get_notification_settings(GetNotificationSettingsRequest {
            name: format!("users/{OWNER}/notificationSettings"),
        })
        .await
        .expect_err("not his");
    assert_eq!(others.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_kind_turned_off_in_the_app_makes_no_inbox_entry() {
    let world = World::new().await;
    world.add_member("bob", Role::Member).await;
    world.wait_inbox("bob", 1).await;
    world
        .inbox_of("bob")
        .update_notification_settings(UpdateNotificationSettingsRequest {
            settings: Some(NotificationSettings {
                name: "users/bob/notificationSettings".into(),
                channels: vec![ChannelSetting {
                    kind: NotificationKind::TaskAssigned as i32,
                    channel: Channel::InApp as i32,
                    enabled: false,
                }],
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["channels".into()],
            }),
        })
        .await
        .expect("turn off");
    world.create_task(OWNER, "Quiet", "bob").await;
    world.settle().await;
    assert_eq!(world.inbox("bob").await.len(), 1);
}
