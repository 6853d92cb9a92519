//! Each rule of who is told what: the right users get exactly one notification of the right kind,
//! the actor none.

use chrono::{TimeDelta, Utc};
use prost_types::FieldMask;
use taskmesh_contracts::execution_v1::{
    Execution, ExecutionCompleted, ExecutionFailed, ExecutionState,
};
use taskmesh_contracts::notifications_v1::{
    Channel, ChannelSetting, Notification, NotificationKind, NotificationSettings,
    UpdateNotificationSettingsRequest,
};
use taskmesh_contracts::projects_v1::{
    ColumnKind, DeleteMemberRequest, Member, Role, UpdateMemberRequest,
};
use taskmesh_contracts::scheduler_v1::{ReminderDue, TaskOverdue};
use taskmesh_contracts::tasks_v1::{
    AddCommentRequest, Comment, CompleteTaskRequest, CreateTaskRequest, DeleteTaskRequest,
    MoveTaskRequest, Task, UpdateTaskRequest,
};
use taskmesh_mesh::time::to_timestamp;

use crate::helpers::{OWNER, World};

/// The kinds in an inbox, sorted, leaving out the "added to the project" every member starts with.
fn kinds(inbox: &[Notification]) -> Vec<NotificationKind> {
    let mut kinds: Vec<_> = inbox
        .iter()
        .map(Notification::kind)
        .filter(|k| *k != NotificationKind::MemberAdded)
        .collect();
    kinds.sort_by_key(|k| *k as i32);
    kinds
}

#[tokio::test]
async fn an_assignment_tells_the_assignee_once_and_the_assigner_nothing() {
    let world = World::new().await;
    world.add_member("bob", Role::Member).await;
    world.add_member("cat", Role::Member).await;
    let task = world.create_task(OWNER, "Fix login", "bob").await;

    let bob = world.wait_inbox("bob", 2).await;
    assert_eq!(kinds(&bob), [NotificationKind::TaskAssigned]);
    assert_eq!(bob[0].resource, task.name);
    assert_eq!(bob[0].actor, format!("users/{OWNER}"));
    assert_eq!(bob[0].project, world.project);
    assert_eq!(bob[0].link, format!("/v1/{}", task.name));
    assert!(
        bob[0].title.contains("assigned you “Fix login”"),
        "{}",
        bob[0].title
    );

    // Reassigned by bob to cat: cat is told, bob (the actor) is not.
    world
        .tasks("bob")
        .update_task(UpdateTaskRequest {
            task: Some(Task {
                name: task.name.clone(),
                assignee: "users/cat".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["assignee".into()],
            }),
        })
        .await
        .expect("reassign");
    assert_eq!(
        kinds(&world.wait_inbox("cat", 2).await),
        [NotificationKind::TaskAssigned]
    );
    // Assigning oneself tells nobody.
    world.create_task("cat", "Mine", "cat").await;
    world.settle().await;
    assert_eq!(world.inbox("cat").await.len(), 2);
    assert_eq!(world.inbox("bob").await.len(), 2);
    assert!(world.inbox(OWNER).await.is_empty());
}

#[tokio::test]
async fn a_comment_tells_the_creator_and_the_assignee_but_not_its_author() {
    let world = World::new().await;
    world.add_member("bob", Role::Member).await;
    world.add_member("cat", Role::Member).await;
    let task = world.create_task(OWNER, "Write docs", "bob").await;
    world.wait_inbox("bob", 2).await;
    world
        .tasks("cat")
        .add_comment(AddCommentRequest {
            parent: task.name.clone(),
            comment: Some(Comment {
                text: "Shall I help?".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("comment");
    let ann = world.wait_inbox(OWNER, 1).await;
    assert_eq!(kinds(&ann), [NotificationKind::CommentAdded]);
    assert_eq!(ann[0].body, "Shall I help?");
    assert!(
        ann[0]
            .resource
            .starts_with(&format!("{}/comments/", task.name))
    );
    let bob = world.wait_inbox("bob", 3).await;
    assert_eq!(
        kinds(&bob),
        [
            NotificationKind::TaskAssigned,
            NotificationKind::CommentAdded
        ]
    );
    // bob answers: ann is told, bob is not, cat (neither creator nor assignee) is not.
    world
        .tasks("bob")
        .add_comment(AddCommentRequest {
            parent: task.name.clone(),
            comment: Some(Comment {
                text: "Yes please".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("comment");
    assert_eq!(world.wait_inbox(OWNER, 2).await.len(), 2);
    world.settle().await;
    assert_eq!(world.inbox("bob").await.len(), 3);
    assert!(kinds(&world.inbox("cat").await).is_empty());
}

#[tokio::test]
async fn moving_completing_and_deleting_tell_the_tasks_people_unless_they_did_it() {
    let world = World::new().await;
    world.add_member("bob", Role::Member).await;
    world.add_member("cat", Role::Member).await;
    let task = world.create_task(OWNER, "Ship it", "bob").await;
    world.wait_inbox("bob", 2).await;

    world
        .tasks("cat")
        .move_task(MoveTaskRequest {
            name: task.name.clone(),
            column: world.column(ColumnKind::Doing),
            ..Default::default()
        })
        .await
        .expect("move");
    assert_eq!(
        kinds(&world.wait_inbox(OWNER, 1).await),
        [NotificationKind::TaskMoved]
    );
    world.wait_inbox("bob", 3).await;

    world
        .tasks("cat")
        .complete_task(CompleteTaskRequest {
            name: task.name.clone(),
            ..Default::default()
        })
        .await
        .expect("complete");
    assert_eq!(
        kinds(&world.wait_inbox(OWNER, 2).await),
        [NotificationKind::TaskCompleted, NotificationKind::TaskMoved]
    );
    world.wait_inbox("bob", 4).await;

    // ann deletes it: bob is told, ann is not.
    world
        .tasks(OWNER)
        .delete_task(DeleteTaskRequest {
            name: task.name.clone(),
            ..Default::default()
        })
        .await
        .expect("delete");
    let bob = world.wait_inbox("bob", 5).await;
    assert_eq!(
        kinds(&bob),
        [
            NotificationKind::TaskAssigned,
            NotificationKind::TaskCompleted,
            NotificationKind::TaskMoved,
            NotificationKind::TaskDeleted
        ]
    );
    world.settle().await;
    assert_eq!(world.inbox(OWNER).await.len(), 2);
    assert!(kinds(&world.inbox("cat").await).is_empty());
}

#[tokio::test]
async fn membership_changes_tell_the_member_but_not_who_made_them() {
    let world = World::new().await;
    world.add_member("bob", Role::Member).await;
    let added = world.wait_inbox("bob", 1).await;
    assert_eq!(added[0].kind(), NotificationKind::MemberAdded);
    assert!(
        added[0].title.contains("added you to Launch as member"),
        "{}",
        added[0].title
    );
    let member = format!("{}/members/bob", world.project);
    world
        .members(OWNER)
        .update_member(UpdateMemberRequest {
            member: Some(Member {
                name: member.clone(),
                role: Role::Admin as i32,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["role".into()],
            }),
        })
        .await
        .expect("role");
    world.wait_inbox("bob", 2).await;
    world
        .members(OWNER)
        .delete_member(DeleteMemberRequest {
            name: member,
            ..Default::default()
        })
        .await
        .expect("remove");
    let bob = world.wait_inbox("bob", 3).await;
    assert_eq!(
        kinds(&bob),
        [
            NotificationKind::MemberRemoved,
            NotificationKind::MemberRoleChanged
        ]
    );
    world.settle().await;
    // ann created the project (and so became its owner) and made every change: nothing for her.
    assert!(world.inbox(OWNER).await.is_empty());
}

fn execution(task: &str, state: ExecutionState) -> Execution {
    Execution {
        name: format!("{task}/executions/{}", uuid::Uuid::now_v7().simple()),
        task: task.to_owned(),
        state: state as i32,
        error: if state == ExecutionState::Failed {
            "the endpoint answered 503".into()
        } else {
            String::new()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn a_failed_job_tells_its_owner_and_a_success_only_those_who_asked() {
    let world = World::new().await;
    let task = world.create_task(OWNER, "Crawl", "").await;
    world.settle().await;
    let failed = execution(&task.name, ExecutionState::Failed);
    world
        .publish(
            &failed.name,
            &ExecutionFailed {
                execution: Some(failed.clone()),
            },
        )
        .await;
    let ann = world.wait_inbox(OWNER, 1).await;
    assert_eq!(kinds(&ann), [NotificationKind::JobFailed]);
    assert_eq!(ann[0].body, "the endpoint answered 503");
    assert_eq!(ann[0].resource, failed.name);

    // A cancellation and a success tell nobody by default.
    let cancelled = execution(&task.name, ExecutionState::Cancelled);
    world
        .publish(
            &cancelled.name,
            &ExecutionFailed {
                execution: Some(cancelled.clone()),
            },
        )
        .await;
    let done = execution(&task.name, ExecutionState::Succeeded);
    world
        .publish(
            &done.name,
            &ExecutionCompleted {
                execution: Some(done.clone()),
            },
        )
        .await;
    world.settle().await;
    assert_eq!(world.inbox(OWNER).await.len(), 1);

    world
        .inbox_of(OWNER)
        .update_notification_settings(UpdateNotificationSettingsRequest {
            settings: Some(NotificationSettings {
                name: format!("users/{OWNER}/notificationSettings"),
                channels: vec![ChannelSetting {
                    kind: NotificationKind::JobSucceeded as i32,
                    channel: Channel::InApp as i32,
                    enabled: true,
                }],
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["channels".into()],
            }),
        })
        .await
        .expect("opt in");
    let again = execution(&task.name, ExecutionState::Succeeded);
    world
        .publish(
            &again.name,
            &ExecutionCompleted {
                execution: Some(again.clone()),
            },
        )
        .await;
    assert_eq!(
        kinds(&world.wait_inbox(OWNER, 2).await),
        [NotificationKind::JobFailed, NotificationKind::JobSucceeded]
    );
}

#[tokio::test]
async fn reminders_and_overdue_tasks_reach_the_scheduler_s_recipient() {
    let world = World::new().await;
    world.add_member("bob", Role::Member).await;
    world.wait_inbox("bob", 1).await;
    let task = world.create_task(OWNER, "Pay invoices", "").await;
    world.settle().await;
    world
        .publish(
            &task.name,
            &ReminderDue {
                task: task.name.clone(),
                reminder: format!("{}/reminders/r1", task.name),
                recipient: "users/bob".into(),
                title: "Pay invoices".into(),
                due_time: Some(to_timestamp(Utc::now() + TimeDelta::hours(1))),
                remind_time: Some(to_timestamp(Utc::now())),
            },
        )
        .await;
    let bob = world.wait_inbox("bob", 2).await;
    assert_eq!(bob[0].kind(), NotificationKind::ReminderDue);
    assert!(bob[0].title.starts_with("Reminder: “Pay invoices” is due"));

    // Overdue and unassigned: its creator is told.
    world
        .publish(
            &task.name,
            &TaskOverdue {
                task: task.name.clone(),
                title: "Pay invoices".into(),
                assignee: String::new(),
                due_time: Some(to_timestamp(Utc::now())),
            },
        )
        .await;
    assert_eq!(
        kinds(&world.wait_inbox(OWNER, 1).await),
        [NotificationKind::TaskOverdue]
    );
    world.settle().await;
    assert_eq!(world.inbox("bob").await.len(), 2);
}

/// The agenda time a few seconds from now on Tokyo's clock.
fn agenda_soon(layers: taskmesh_mesh::ConfigLayers) -> taskmesh_mesh::ConfigLayers {
    let at = (Utc::now() + TimeDelta::seconds(30)).with_timezone(&chrono_tz::Asia::Tokyo);
    layers.set("agenda.local_time", at.format("%H:%M:%S").to_string())
}

#[tokio::test]
async fn the_daily_agenda_lists_todays_and_overdue_tasks_at_the_users_own_time() {
    let world = World::with(agenda_soon).await;
    world.add_member("bob", Role::Member).await;
    world.wait_inbox("bob", 1).await;
    // bob lives in Tokyo: his agenda comes when the configured time passes there.
    world
        .inbox_of("bob")
        .update_notification_settings(UpdateNotificationSettingsRequest {
            settings: Some(NotificationSettings {
                name: "users/bob/notificationSettings".into(),
                time_zone: "Asia/Tokyo".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["time_zone".into()],
            }),
        })
        .await
        .expect("zone");
    for (title, due) in [
        ("Late report", Utc::now() - TimeDelta::days(2)),
        ("Today's call", Utc::now() + TimeDelta::seconds(90)),
        ("Next month", Utc::now() + TimeDelta::days(30)),
    ] {
        world
            .tasks(OWNER)
            .create_task(CreateTaskRequest {
                parent: world.project.clone(),
                task: Some(Task {
                    title: title.into(),
                    column: world.column(ColumnKind::Todo),
                    assignee: "users/bob".into(),
                    due_time: Some(to_timestamp(due)),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("task");
    }
    let bob = world
        .wait_inbox_within("bob", 5, std::time::Duration::from_secs(75))
        .await;
    let agenda: Vec<_> = bob
        .iter()
        .filter(|n| n.kind() == NotificationKind::DailyAgenda)
        .collect();
    assert_eq!(agenda.len(), 1, "{bob:#?}");
    assert!(
        agenda[0].title.ends_with("1 due today, 1 overdue"),
        "{}",
        agenda[0].title
    );
    assert!(agenda[0].body.contains("Late report"));
    assert!(agenda[0].body.contains("Today's call"));
    assert!(!agenda[0].body.contains("Next month"));
}

#[tokio::test]
async fn both_sides_of_a_booking_are_told_and_the_customer_is_asked_for_a_review() {
    use taskmesh_contracts::bookings_v1::{
        Booking, BookingCancelled, BookingCompleted, BookingConfirmed, BookingRequested,
    };
    let world = World::new().await;
    let start = Utc::now() + TimeDelta::days(3);
    let booking = |state: i32, reason: &str, by: &str| Booking {
        name: "providers/pia/bookings/b1".into(),
        listing: "providers/pia/listings/yoga".into(),
        customer: "users/cus".into(),
        start_time: Some(to_timestamp(start)),
        state,
        cancel_reason: reason.into(),
        cancelled_by: by.into(),
        ..Default::default()
    };
    let name = "providers/pia/bookings/b1";
    world
        .publish(
            name,
            &BookingRequested {
                booking: Some(booking(1, "", "")),
            },
        )
        .await;
    let pia = world.wait_inbox("pia", 1).await;
    let cus = world.wait_inbox("cus", 1).await;
    assert_eq!(pia[0].kind(), NotificationKind::BookingRequested);
    assert!(pia[0].title.contains("from users/cus"), "{}", pia[0].title);
    assert_eq!(cus[0].kind(), NotificationKind::BookingRequested);
    assert_eq!(cus[0].resource, name);
    world
        .publish(
            name,
            &BookingConfirmed {
                booking: Some(booking(2, "", "")),
            },
        )
        .await;
    let cus = world.wait_inbox("cus", 2).await;
    assert!(
        cus.iter()
            .any(|n| n.kind() == NotificationKind::BookingConfirmed)
    );
    world
        .publish(
            name,
            &BookingCancelled {
                booking: Some(booking(3, "ill", "users/pia")),
            },
        )
        .await;
    let pia = world.wait_inbox("pia", 2).await;
    let cus = world.wait_inbox("cus", 3).await;
    let cancelled = |inbox: &[Notification]| {
        inbox
            .iter()
            .find(|n| n.kind() == NotificationKind::BookingCancelled)
            .map(|n| n.title.clone())
            .expect("told of the cancellation")
    };
    assert!(
        cancelled(&pia).starts_with("You cancelled"),
        "{}",
        cancelled(&pia)
    );
    assert!(
        cancelled(&cus).starts_with("users/pia cancelled"),
        "{}",
        cancelled(&cus)
    );
    assert!(cancelled(&cus).contains("“ill”"));
    world
        .publish(
            name,
            &BookingCompleted {
                booking: Some(booking(4, "", "")),
            },
        )
        .await;
    let cus = world.wait_inbox("cus", 4).await;
    let review = cus
        .iter()
        .find(|n| n.kind() == NotificationKind::ReviewRequested)
        .expect("asked for a review");
    assert_eq!(review.resource, "providers/pia/listings/yoga");
    world.settle().await;
    assert_eq!(
        world.inbox("pia").await.len(),
        2,
        "the provider is not asked to review"
    );
}
