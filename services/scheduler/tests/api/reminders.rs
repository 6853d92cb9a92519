//! Reminders and overdue tasks, from task events published on `TASKS` as the tasks service does:
//! a reminder fires before the due time, follows a moved due time, is cancelled by completion;
//! a user's default reminders apply to tasks assigned to them; a task turns overdue once per due
//! time.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use prost::Name;
use taskmesh_contracts::scheduler_v1::reminder_service_client::ReminderServiceClient;
use taskmesh_contracts::scheduler_v1::{
    CreateReminderRequest, DeleteReminderRequest, GetReminderSettingsRequest, ListRemindersRequest,
    Reminder, ReminderDue, ReminderRule, ReminderSettings, TaskOverdue,
    UpdateReminderSettingsRequest, reminder_rule,
};
use taskmesh_contracts::tasks_v1::{
    EventContext, Status as TaskStatus, Task, TaskCompleted, TaskCreated, TaskUpdated,
};
use taskmesh_events::StreamSpec;
use taskmesh_testing::{Authed, DefaultCaller};
use tonic::Code;

use crate::helpers::{World, secs, ts};

/// Publishes task events on `TASKS` as the tasks service would.
struct Tasks {
    js: jetstream::Context,
    project: String,
}

impl Tasks {
    async fn new(world: &World) -> Self {
        let client = async_nats::connect(world.nats.url()).await.expect("nats");
        let js = jetstream::new(client);
        if StreamSpec::for_context("tasks", 1, Duration::from_secs(60))
            .ensure(&js)
            .await
            .is_err()
        {
            js.get_stream("TASKS").await.expect("stream");
        }
        Self {
            js,
            project: world.project.clone(),
        }
    }

    fn new_task(&self) -> String {
        format!("{}/tasks/{}", self.project, uuid::Uuid::now_v7())
    }

    async fn publish<M: Name>(&self, task: &str, event: &M) {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", uuid::Uuid::now_v7().to_string().as_str());
        headers.insert("Taskmesh-Event-Type", M::full_name().as_str());
        headers.insert("Taskmesh-Subject", task);
        self.js
            .send_publish(
                taskmesh_events::event::subject_for(&M::full_name()),
                PublishMessage::build()
                    .payload(event.encode_to_vec().into())
                    .headers(headers),
            )
            .await
            .expect("publish")
            .await
            .expect("ack");
    }

    async fn created(&self, task: &str, due: DateTime<Utc>, assignee: &str) {
        self.publish(
            task,
            &TaskCreated {
                context: Some(context(task, 1)),
                title: "Pay the invoice".into(),
                assignee: assignee.into(),
                due_time: Some(ts(due)),
                status: TaskStatus::Todo as i32,
                ..Default::default()
            },
        )
        .await;
    }

    async fn due_moved(&self, task: &str, version: i64, due: DateTime<Utc>) {
        self.publish(
            task,
            &TaskUpdated {
                context: Some(context(task, version)),
                changes: Some(Task {
                    due_time: Some(ts(due)),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["due_time".into()],
                }),
            },
        )
        .await;
    }

    async fn completed(&self, task: &str, version: i64) {
        self.publish(
            task,
            &TaskCompleted {
                context: Some(context(task, version)),
                status: TaskStatus::Done as i32,
                ..Default::default()
            },
        )
        .await;
    }
}

fn context(task: &str, version: i64) -> EventContext {
    EventContext {
        task: task.to_owned(),
        version,
        actor: "users/owner".into(),
        time: Some(ts(Utc::now())),
    }
}

fn before(seconds: i64) -> ReminderRule {
    ReminderRule {
        kind: Some(reminder_rule::Kind::BeforeDue(secs(seconds))),
    }
}

fn reminders(world: &World) -> ReminderServiceClient<Authed> {
    ReminderServiceClient::with_interceptor(world.channel.clone(), DefaultCaller("owner"))
}

/// Every ReminderDue and TaskOverdue on the stream so far.
async fn alarms(world: &World) -> (Vec<ReminderDue>, Vec<TaskOverdue>) {
    (world.published().await, world.published().await)
}

async fn remind(world: &World, task: &str, rule: ReminderRule) -> Reminder {
    reminders(world)
        .create_reminder(CreateReminderRequest {
            parent: task.to_owned(),
            reminder: Some(Reminder {
                rule: Some(rule),
                ..Default::default()
            }),
        })
        .await
        .expect("create reminder")
        .into_inner()
}

/// Waits until the scheduler knows `task` (its consumer applied the event).
async fn known(world: &World, task: &str) {
    let mut db = world.db.connect(&world.stack).await;
    for _ in 0..100 {
        let found: Option<i64> = sqlx::query_scalar("SELECT version FROM task_due WHERE task = $1")
            .bind(task)
            .fetch_optional(&mut db)
            .await
            .expect("task_due");
        if found.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the scheduler never learned of {task}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_fires_before_the_due_time_follows_it_when_it_moves_and_stops_at_completion() {
    let world = World::new().await;
    let tasks = Tasks::new(&world).await;
    let now = Utc::now();

    // Due in 70 s, reminded a minute before: in 10 s. Then the due time moves 8 s earlier.
    let moved = tasks.new_task();
    tasks
        .created(&moved, now + TimeDelta::seconds(70), "")
        .await;
    known(&world, &moved).await;
    let reminder = remind(&world, &moved, before(60)).await;
    assert_eq!(reminder.recipient, "users/owner");
    let first = taskmesh_mesh::time::from_timestamp(reminder.remind_time).expect("remind time");
    assert_eq!(first, (now + TimeDelta::seconds(10)).trunc_subsecs(6));
    let new_due = now + TimeDelta::seconds(62);
    tasks.due_moved(&moved, 2, new_due).await;

    // Another, completed before its reminder comes.
    let done = tasks.new_task();
    tasks.created(&done, now + TimeDelta::seconds(64), "").await;
    known(&world, &done).await;
    remind(&world, &done, before(60)).await;
    tasks.completed(&done, 2).await;

    for _ in 0..100 {
        if !alarms(&world).await.0.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Wait past when the completed one would have fired.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (fired, _) = alarms(&world).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    let due = &fired[0];
    assert_eq!(due.task, moved);
    assert_eq!(due.reminder, reminder.name);
    assert_eq!(due.recipient, "users/owner");
    assert_eq!(
        taskmesh_mesh::time::from_timestamp(due.due_time),
        Some(new_due.trunc_subsecs(6)),
        "the moved due time"
    );
    assert_eq!(due.title, "Pay the invoice");

    // Listing shows it; deleting it is for its owner only.
    let listed = reminders(&world)
        .list_reminders(ListRemindersRequest {
            parent: moved.clone(),
        })
        .await
        .expect("list")
        .into_inner()
        .reminders;
    assert_eq!(listed.len(), 1);
    let status =
        ReminderServiceClient::with_interceptor(world.channel.clone(), DefaultCaller("stranger"))
            .delete_reminder(DeleteReminderRequest {
                name: reminder.name.clone(),
            })
            .await
            .expect_err("stranger");
    assert_eq!(status.code(), Code::PermissionDenied);
    reminders(&world)
        .delete_reminder(DeleteReminderRequest {
            name: reminder.name.clone(),
        })
        .await
        .expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_turns_overdue_once_per_due_time_and_never_when_done() {
    let world = World::new().await;
    let tasks = Tasks::new(&world).await;
    let now = Utc::now();
    let late = tasks.new_task();
    tasks
        .created(&late, now + TimeDelta::seconds(2), "users/owner")
        .await;
    let on_time = tasks.new_task();
    tasks
        .created(&on_time, now + TimeDelta::seconds(3), "")
        .await;
    tasks.completed(&on_time, 2).await;

    let mut overdue = Vec::new();
    for _ in 0..100 {
        overdue = alarms(&world).await.1;
        if !overdue.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, overdue_now) = alarms(&world).await;
    assert_eq!(overdue_now.len(), 1, "once: {overdue_now:?}");
    assert_eq!(overdue[0].task, late);
    assert_eq!(overdue[0].assignee, "users/owner");

    // The due time moves: overdue again, once, for the new one.
    let again = Utc::now() + TimeDelta::seconds(1);
    tasks.due_moved(&late, 2, again).await;
    let mut overdue = Vec::new();
    for _ in 0..100 {
        overdue = alarms(&world).await.1;
        if overdue.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(alarms(&world).await.1.len(), 2);
    assert_eq!(
        taskmesh_mesh::time::from_timestamp(overdue[1].due_time),
        Some(again.trunc_subsecs(6))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_reminders_apply_to_the_tasks_assigned_to_their_user() {
    let world = World::new().await;
    let mut client = reminders(&world);
    let settings = client
        .update_reminder_settings(UpdateReminderSettingsRequest {
            settings: Some(ReminderSettings {
                name: "users/owner/reminderSettings".into(),
                default_reminders: vec![before(60)],
                ..Default::default()
            }),
        })
        .await
        .expect("settings")
        .into_inner();
    assert_eq!(settings.default_reminders, vec![before(60)]);
    let read = client
        .get_reminder_settings(GetReminderSettingsRequest {
            name: "users/owner/reminderSettings".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(read.default_reminders, vec![before(60)]);
    let status = client
        .get_reminder_settings(GetReminderSettingsRequest {
            name: "users/someone-else/reminderSettings".into(),
        })
        .await
        .expect_err("another user's");
    assert_eq!(status.code(), Code::PermissionDenied);

    let tasks = Tasks::new(&world).await;
    let mine = tasks.new_task();
    tasks
        .created(&mine, Utc::now() + TimeDelta::seconds(62), "users/owner")
        .await;
    let theirs = tasks.new_task();
    tasks
        .created(&theirs, Utc::now() + TimeDelta::seconds(62), "users/bob")
        .await;
    let mut fired = Vec::new();
    for _ in 0..100 {
        fired = alarms(&world).await.0;
        if !fired.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (fired_now, _) = alarms(&world).await;
    assert_eq!(fired_now.len(), 1, "{fired_now:?}");
    assert_eq!(fired[0].task, mine);
    assert_eq!(fired[0].reminder, "users/owner/reminderSettings");
    assert_eq!(fired[0].recipient, "users/owner");
}
