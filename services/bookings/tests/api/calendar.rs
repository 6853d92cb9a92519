//! The calendar feed: read by an independent parser (Python's `icalendar`), it round-trips each
//! booking's UID, times, status and sequence; a rotated token shuts the old address.

use taskmesh_contracts::bookings_v1::{
    CancelBookingRequest, ConfirmBookingRequest, DownloadCalendarFeedRequest,
    GetCalendarFeedRequest, RescheduleBookingRequest, RotateCalendarFeedRequest,
};
use tonic::Code;

use crate::helpers::{PROVIDER, World, a_day_ahead, berlin};

/// The events of an iCalendar text as Python's `icalendar` reads them: uid, start and end (RFC
/// 3339, UTC), status and sequence.
fn parse(stack: &taskmesh_testing::Stack, text: &str) -> Vec<serde_json::Value> {
    let script = r#"
import json, sys
from icalendar import Calendar
calendar = Calendar.from_ical(sys.stdin.read())
events = []
for event in calendar.walk("VEVENT"):
    events.append({
        "uid": str(event["UID"]),
        "start": event.decoded("DTSTART").isoformat(),
        "end": event.decoded("DTEND").isoformat(),
        "status": str(event.get("STATUS", "")),
        "sequence": int(event.get("SEQUENCE", 0)),
        "summary": str(event.get("SUMMARY", "")),
    })
print(json.dumps(sorted(events, key=lambda e: e["start"])))
"#;
    let mut child = std::process::Command::new(stack.home.join("venv/bin/python"))
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write the feed");
    }
    let output = child.wait_with_output().expect("python ran");
    assert!(
        output.status.success(),
        "icalendar refused the feed: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json")
}

/// Waits until the feed at `name` holds `count` events, and returns them.
async fn wait_feed(
    world: &World,
    client: &mut taskmesh_contracts::bookings_v1::calendar_service_client::CalendarServiceClient<
        tonic::transport::Channel,
    >,
    name: &str,
    count: usize,
) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let body = client
            .download_calendar_feed(DownloadCalendarFeedRequest {
                name: name.to_owned(),
            })
            .await
            .expect("the feed")
            .into_inner();
        let events = parse(&world.stack, &String::from_utf8(body.data).expect("utf-8"));
        if events.len() == count {
            return events;
        }
        assert!(tokio::time::Instant::now() < deadline, "feed: {events:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_feed_parses_elsewhere_and_a_rotated_token_shuts_the_old_address() {
    let world = World::new("bookings_test_calendar", 0).await;
    let day = a_day_ahead();
    let mut ann = world.as_user(PROVIDER).await;
    let mut carol = world.as_user("carol").await;
    let kept = world
        .book(&mut carol, berlin(day, 9, 0))
        .await
        .expect("book");
    ann.bookings
        .confirm_booking(ConfirmBookingRequest {
            name: kept.name.clone(),
        })
        .await
        .expect("confirm");
    let moved = world
        .book(&mut carol, berlin(day, 11, 0))
        .await
        .expect("book");
    carol
        .bookings
        .reschedule_booking(RescheduleBookingRequest {
            name: moved.name.clone(),
            start_time: Some(taskmesh_mesh::time::to_timestamp(berlin(day, 15, 0))),
            etag: String::new(),
        })
        .await
        .expect("reschedule");
    let dropped = world
        .book(&mut carol, berlin(day, 17, 0))
        .await
        .expect("book");
    carol
        .bookings
        .cancel_booking(CancelBookingRequest {
            name: dropped.name.clone(),
            reason: "busy".into(),
        })
        .await
        .expect("cancel");

    let feed = carol
        .calendar
        .get_calendar_feed(GetCalendarFeedRequest {
            name: "users/carol/calendarFeed".into(),
        })
        .await
        .expect("feed")
        .into_inner();
    let denied = ann
        .calendar
        .get_calendar_feed(GetCalendarFeedRequest {
            name: "users/carol/calendarFeed".into(),
        })
        .await
        .expect_err("carol's");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let token = |path: &str| {
        path.trim_start_matches("/v1/")
            .trim_end_matches(":ics")
            .to_owned()
    };
    let download = |name: String| DownloadCalendarFeedRequest { name };
    // Read with no credential at all, as calendar programs do.
    let mut anonymous =
        taskmesh_contracts::bookings_v1::calendar_service_client::CalendarServiceClient::new(
            taskmesh_testing::channel(world.app.addr).await,
        );
    let body = anonymous
        .download_calendar_feed(download(token(&feed.path)))
        .await
        .expect("the feed")
        .into_inner();
    assert!(body.content_type.starts_with("text/calendar"));
    let text = String::from_utf8(body.data).expect("utf-8");
    let events = parse(&world.stack, &text);
    let uid = |name: &str| format!("{}@taskmesh.dev", name.replace('/', "-"));
    let at = |hour| berlin(day, hour, 0).to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let expected = [
        (uid(&kept.name), at(9), at(10), "CONFIRMED", 1),
        (uid(&moved.name), at(15), at(16), "TENTATIVE", 1),
        (uid(&dropped.name), at(17), at(18), "CANCELLED", 1),
    ];
    assert_eq!(events.len(), 3, "{events:?}");
    for (event, (uid, start, end, status, sequence)) in events.iter().zip(expected) {
        assert_eq!(event["uid"], uid.as_str(), "{event}");
        assert_eq!(event["start"], start.as_str(), "{event}");
        assert_eq!(event["end"], end.as_str(), "{event}");
        assert_eq!(event["status"], status, "{event}");
        assert_eq!(event["sequence"], sequence, "{event}");
    }
    // The provider's feed holds the same bookings, named for the customer.
    let ann_feed = ann
        .calendar
        .get_calendar_feed(GetCalendarFeedRequest {
            name: format!("users/{PROVIDER}/calendarFeed"),
        })
        .await
        .expect("ann's feed")
        .into_inner();
    let ann_text = anonymous
        .download_calendar_feed(download(token(&ann_feed.path)))
        .await
        .expect("ann's feed")
        .into_inner()
        .data;
    let ann_events = parse(&world.stack, &String::from_utf8(ann_text).expect("utf-8"));
    assert_eq!(ann_events.len(), 3);
    assert!(ann_events.iter().all(|e| {
        e["summary"]
            .as_str()
            .is_some_and(|s| s.contains("users/carol"))
    }));

    let rotated = carol
        .calendar
        .rotate_calendar_feed(RotateCalendarFeedRequest {
            name: "users/carol/calendarFeed".into(),
        })
        .await
        .expect("rotate")
        .into_inner();
    assert_ne!(rotated.path, feed.path);
    let gone = anonymous
        .download_calendar_feed(download(token(&feed.path)))
        .await
        .expect_err("the old address");
    assert_eq!(gone.code(), Code::NotFound);
    anonymous
        .download_calendar_feed(download(token(&rotated.path)))
        .await
        .expect("the new address");

    // Tasks assigned to carol with a due time join her feed, as the tasks service tells them.
    use taskmesh_contracts::tasks_v1::{EventContext, Task, TaskCreated, TaskDeleted, TaskUpdated};
    let due = berlin(day, 12, 30);
    let context = |task: &str, version: i64| {
        Some(EventContext {
            task: task.into(),
            version,
            actor: "users/carol".into(),
            time: Some(taskmesh_mesh::time::now()),
        })
    };
    let (report, other) = ("projects/p1/tasks/t1", "projects/p1/tasks/t2");
    for task in [report, other] {
        world
            .publish(
                task,
                &TaskCreated {
                    context: context(task, 1),
                    title: "Send the report".into(),
                    assignee: "users/carol".into(),
                    due_time: Some(taskmesh_mesh::time::to_timestamp(due)),
                    ..Default::default()
                },
            )
            .await;
    }
    world
        .publish(
            report,
            &TaskUpdated {
                context: context(report, 2),
                changes: Some(Task {
                    title: "Send the final report".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into()],
                }),
            },
        )
        .await;
    world
        .publish(
            other,
            &TaskDeleted {
                context: context(other, 2),
            },
        )
        .await;
    // Three bookings and the one live task (the deleted one leaves, the renamed one is renamed).
    let feed = token(&rotated.path);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let task_event = loop {
        let events = wait_feed(&world, &mut anonymous, &feed, 4).await;
        let found = events
            .iter()
            .find(|e| e["uid"] == uid(report).as_str())
            .cloned()
            .expect("the task's event");
        if found["summary"] == "Due: Send the final report" {
            break found;
        }
        assert!(tokio::time::Instant::now() < deadline, "{found}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        task_event["start"],
        due.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    );
    assert_eq!(task_event["sequence"], 2);
}
