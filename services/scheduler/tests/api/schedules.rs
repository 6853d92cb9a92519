//! The standard methods, :pause, :resume and :preview, and what they refuse.

use chrono::{DateTime, TimeDelta, Utc};
use taskmesh_contracts::projects_v1::ColumnKind;
use taskmesh_contracts::scheduler_v1::{
    Action, Cron, DeleteScheduleRequest, GetScheduleRequest, Interval, ListSchedulesRequest,
    OneShot, PauseScheduleRequest, PreviewScheduleRequest, Recurrence, ResumeScheduleRequest,
    Schedule, State, TaskTemplate, Trigger, UpdateScheduleRequest, action, trigger,
};
use taskmesh_contracts::tasks_v1::{HttpRequest, Job, Status as TaskStatus, job};
use taskmesh_testing::{reason, violations};
use tonic::Code;

use crate::helpers::{World, notify, secs, ts};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

fn cron(expression: &str, zone: &str) -> Trigger {
    Trigger {
        kind: Some(trigger::Kind::Cron(Cron {
            expression: expression.into(),
            time_zone: zone.into(),
            ..Default::default()
        })),
    }
}

fn recurrence(rule: &str) -> Trigger {
    Trigger {
        kind: Some(trigger::Kind::Recurrence(Recurrence { rule: rule.into() })),
    }
}

async fn preview(world: &World, name: &str, count: i32) -> Vec<(DateTime<Utc>, String)> {
    world
        .client()
        .preview_schedule(PreviewScheduleRequest {
            name: name.to_owned(),
            count,
        })
        .await
        .expect("preview")
        .into_inner()
        .fire_times
        .into_iter()
        .map(|f| {
            (
                taskmesh_mesh::time::from_timestamp(f.fire_time).expect("time"),
                f.local_time,
            )
        })
        .collect()
}

#[tokio::test]
async fn a_schedule_is_created_read_listed_changed_paused_resumed_and_deleted() {
    let world = World::new().await;
    let start = crate::helpers::whole_seconds_from_now(3600);
    let created = world
        .notify_schedule(Trigger {
            kind: Some(trigger::Kind::Interval(Interval {
                every: Some(secs(3600)),
                start_time: Some(ts(start)),
                end_time: None,
            })),
        })
        .await;
    assert!(
        created
            .name
            .starts_with(&format!("{}/schedules/", world.project))
    );
    assert_eq!(created.state(), State::Active);
    assert_eq!(created.owner, "users/owner");
    assert_eq!(
        taskmesh_mesh::time::from_timestamp(created.next_fire_time),
        Some(start)
    );
    let mut client = world.client();
    let got = client
        .get_schedule(GetScheduleRequest {
            name: created.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, created);
    let listed = client
        .list_schedules(ListSchedulesRequest {
            parent: world.project.clone(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .schedules;
    assert_eq!(listed, vec![created.clone()]);

    let updated = client
        .update_schedule(UpdateScheduleRequest {
            schedule: Some(Schedule {
                name: created.name.clone(),
                display_name: "Daily agenda".into(),
                trigger: Some(cron("0 9 * * *", "Europe/Berlin")),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into(), "trigger".into()],
            }),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.display_name, "Daily agenda");
    assert_ne!(updated.etag, created.etag);
    let next = taskmesh_mesh::time::from_timestamp(updated.next_fire_time).expect("next");
    assert!(next > Utc::now() && next <= Utc::now() + TimeDelta::days(1));

    // A stale etag is refused.
    let stale = client
        .pause_schedule(PauseScheduleRequest {
            name: created.name.clone(),
            etag: created.etag.clone(),
        })
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);

    let paused = client
        .pause_schedule(PauseScheduleRequest {
            name: created.name.clone(),
            etag: updated.etag.clone(),
        })
        .await
        .expect("pause")
        .into_inner();
    assert_eq!(paused.state(), State::Paused);
    assert_eq!(paused.next_fire_time, None);
    let resumed = client
        .resume_schedule(ResumeScheduleRequest {
            name: created.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("resume")
        .into_inner();
    assert_eq!(resumed.state(), State::Active);
    assert_eq!(resumed.next_fire_time, updated.next_fire_time);

    client
        .delete_schedule(DeleteScheduleRequest {
            name: created.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("delete");
    let gone = client
        .get_schedule(GetScheduleRequest {
            name: created.name.clone(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn preview_gives_the_next_fire_times_in_utc_and_on_the_zone_s_wall_clock() {
    let world = World::new().await;
    // Weekdays at 09:00 in Berlin, from a fixed start in 2030 so the expectation is fixed too.
    let schedule = world
        .notify_schedule(Trigger {
            kind: Some(trigger::Kind::Cron(Cron {
                expression: "0 9 * * MON-FRI".into(),
                time_zone: "Europe/Berlin".into(),
                start_time: Some(ts(utc("2030-03-29T00:00:00Z"))),
                end_time: None,
            })),
        })
        .await;
    let times = preview(&world, &schedule.name, 3).await;
    assert_eq!(
        times,
        vec![
            // Friday in winter time, then Monday and Tuesday in summer time (from 2030-03-31).
            (
                utc("2030-03-29T08:00:00Z"),
                "2030-03-29T09:00:00+01:00".to_owned()
            ),
            (
                utc("2030-04-01T07:00:00Z"),
                "2030-04-01T09:00:00+02:00".to_owned()
            ),
            (
                utc("2030-04-02T07:00:00Z"),
                "2030-04-02T09:00:00+02:00".to_owned()
            ),
        ]
    );

    let counted = world
        .notify_schedule(recurrence(
            "DTSTART;TZID=America/New_York:20300107T083000\nRRULE:FREQ=WEEKLY;BYDAY=MO,TH;COUNT=4",
        ))
        .await;
    let times: Vec<_> = preview(&world, &counted.name, 10).await;
    assert_eq!(
        times.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        vec![
            utc("2030-01-07T13:30:00Z"),
            utc("2030-01-10T13:30:00Z"),
            utc("2030-01-14T13:30:00Z"),
            utc("2030-01-17T13:30:00Z"),
        ]
    );
    assert_eq!(times[0].1, "2030-01-07T08:30:00-05:00");

    let until = world
        .notify_schedule(recurrence(
            "DTSTART:20300101T120000Z\nRRULE:FREQ=DAILY;UNTIL=20300105T120000Z\nEXDATE:20300103T120000Z",
        ))
        .await;
    assert_eq!(
        preview(&world, &until.name, 10)
            .await
            .into_iter()
            .map(|(t, _)| t)
            .collect::<Vec<_>>(),
        vec![
            utc("2030-01-01T12:00:00Z"),
            utc("2030-01-02T12:00:00Z"),
            utc("2030-01-04T12:00:00Z"),
            utc("2030-01-05T12:00:00Z"),
        ]
    );
}

#[tokio::test]
async fn bad_triggers_and_actions_are_refused_naming_the_field() {
    let world = World::new().await;
    let mut client = world.client();
    let refused = |trigger: Trigger, action: Action| {
        let mut client = client.clone();
        let project = world.project.clone();
        async move {
            client
                .create_schedule(taskmesh_contracts::scheduler_v1::CreateScheduleRequest {
                    parent: project,
                    schedule: Some(Schedule {
                        display_name: "bad".into(),
                        trigger: Some(trigger),
                        action: Some(action),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .expect_err("refused")
        }
    };
    let cases = [
        (cron("61 * * * *", ""), "schedule.trigger.cron.expression"),
        (
            cron("0 9 * * *", "Mars/Olympus"),
            "schedule.trigger.cron.time_zone",
        ),
        (
            recurrence("RRULE:FREQ=DAILY"),
            "schedule.trigger.recurrence.rule",
        ),
        (
            recurrence("DTSTART:20300101T120000\nRRULE:FREQ=DAILY"),
            "schedule.trigger.recurrence.rule",
        ),
        (
            Trigger {
                kind: Some(trigger::Kind::Once(OneShot {
                    fire_time: Some(ts(Utc::now() - TimeDelta::hours(1))),
                })),
            },
            "schedule.trigger",
        ),
        (
            Trigger {
                kind: Some(trigger::Kind::Interval(Interval {
                    every: Some(secs(0)),
                    ..Default::default()
                })),
            },
            "schedule.trigger.interval.every",
        ),
    ];
    for (trigger, field) in cases {
        let status = refused(trigger, notify()).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            violations(&status).iter().any(|v| v.starts_with(field)),
            "{field}: {:?}",
            violations(&status)
        );
    }
    // A template column of another project.
    let status = refused(
        cron("0 9 * * *", ""),
        Action {
            kind: Some(action::Kind::CreateTask(TaskTemplate {
                column: "projects/elsewhere/boards/b/columns/c".into(),
                title: "Water the plants".into(),
                ..Default::default()
            })),
        },
    )
    .await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(violations(&status)[0].starts_with("schedule.action.create_task.column"));

    // Strangers see nothing; viewers-to-be cannot write.
    let status = world
        .client_as("stranger")
        .list_schedules(ListSchedulesRequest {
            parent: world.project.clone(),
            ..Default::default()
        })
        .await
        .expect_err("stranger");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = client
        .get_schedule(GetScheduleRequest {
            name: format!("{}/schedules/nope", world.project),
        })
        .await
        .expect_err("missing");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "RESOURCE_NOT_FOUND");
}

#[tokio::test]
async fn a_task_template_keeps_its_column_s_status_and_seals_its_job_s_secrets() {
    let world = World::new().await;
    let schedule = world
        .create(
            cron("0 9 * * *", "UTC"),
            Action {
                kind: Some(action::Kind::CreateTask(TaskTemplate {
                    column: world.column(ColumnKind::Doing),
                    title: "Check the backups".into(),
                    due_after: Some(secs(3600)),
                    job: Some(Job {
                        kind: Some(job::Kind::HttpRequest(HttpRequest {
                            url: "https://backups.example.com/status".into(),
                            headers: [("Authorization".to_owned(), "Bearer s3cret".to_owned())]
                                .into(),
                            ..Default::default()
                        })),
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
            },
            |s| s,
        )
        .await;
    let Some(action::Kind::CreateTask(template)) = schedule.action.and_then(|a| a.kind) else {
        panic!("template");
    };
    let Some(job::Kind::HttpRequest(request)) = template.job.and_then(|j| j.kind) else {
        panic!("job");
    };
    assert_eq!(
        request.headers["Authorization"],
        taskmesh_mesh::sealed::REDACTED
    );
    let mut db = world.db.connect(&world.stack).await;
    let (status, action): (i16, Vec<u8>) =
        sqlx::query_as("SELECT task_status, action FROM schedules WHERE name = $1")
            .bind(&schedule.name)
            .fetch_one(&mut db)
            .await
            .expect("row");
    assert_eq!(i32::from(status), TaskStatus::Doing as i32);
    assert!(
        !String::from_utf8_lossy(&action).contains("s3cret"),
        "the secret is stored sealed"
    );
}

async fn until_state(world: &World, name: &str, state: State) -> Schedule {
    for _ in 0..100 {
        let schedule = world
            .client()
            .get_schedule(GetScheduleRequest {
                name: name.to_owned(),
            })
            .await
            .expect("get")
            .into_inner();
        if schedule.state() == state {
            return schedule;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{name} never reached {state:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_pause_when_their_owner_leaves_or_their_column_goes() {
    use taskmesh_contracts::projects_v1::board_service_client::BoardServiceClient;
    use taskmesh_contracts::projects_v1::member_service_client::MemberServiceClient;
    use taskmesh_contracts::projects_v1::{
        Column, ColumnKind as Kind, CreateMemberRequest, DeleteColumnRequest, DeleteMemberRequest,
        Member, Role, UpdateColumnRequest,
    };
    use taskmesh_testing::DefaultCaller;

    let world = World::new().await;
    let projects =
        tonic::transport::Channel::from_shared(format!("http://{}", world.projects_addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
    let mut members =
        MemberServiceClient::with_interceptor(projects.clone(), DefaultCaller("owner"));
    members
        .create_member(CreateMemberRequest {
            parent: world.project.clone(),
            member: Some(Member {
                user: "users/bob".into(),
                role: Role::Member as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("add bob");
    let bobs = world
        .client_as("bob")
        .create_schedule(taskmesh_contracts::scheduler_v1::CreateScheduleRequest {
            parent: world.project.clone(),
            schedule: Some(Schedule {
                display_name: "bob's".into(),
                trigger: Some(cron("0 9 * * *", "UTC")),
                action: Some(notify()),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("bob creates")
        .into_inner();
    assert_eq!(bobs.owner, "users/bob");
    let column = world.column(ColumnKind::Doing);
    let template = world
        .create(
            cron("0 9 * * *", "UTC"),
            Action {
                kind: Some(action::Kind::CreateTask(TaskTemplate {
                    column: column.clone(),
                    title: "Stand-up".into(),
                    ..Default::default()
                })),
            },
            |s| s,
        )
        .await;
    let owners = world.notify_schedule(cron("0 9 * * *", "UTC")).await;

    // Bob leaves: his schedule stops acting for him; the others go on.
    members
        .delete_member(DeleteMemberRequest {
            name: format!("{}/members/bob", world.project),
            etag: String::new(),
        })
        .await
        .expect("remove bob");
    let paused = until_state(&world, &bobs.name, State::Paused).await;
    assert_eq!(
        paused.pause_reason,
        "its owner is no longer a member of the project"
    );
    assert_eq!(paused.next_fire_time, None);

    // The template's column becomes a Done column: its tasks will be done ones.
    let mut boards = BoardServiceClient::with_interceptor(projects, DefaultCaller("owner"));
    boards
        .update_column(UpdateColumnRequest {
            column: Some(Column {
                name: column.clone(),
                kind: Kind::Done as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["kind".into()],
            }),
        })
        .await
        .expect("column kind");
    let mut db = world.db.connect(&world.stack).await;
    let mut status = 0;
    for _ in 0..100 {
        status = sqlx::query_scalar::<_, i16>("SELECT task_status FROM schedules WHERE name = $1")
            .bind(&template.name)
            .fetch_one(&mut db)
            .await
            .expect("status");
        if i32::from(status) == TaskStatus::Done as i32 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(i32::from(status), TaskStatus::Done as i32);

    // The column goes: the template has nowhere to put its tasks.
    boards
        .delete_column(DeleteColumnRequest {
            name: column,
            etag: String::new(),
        })
        .await
        .expect("delete column");
    let paused = until_state(&world, &template.name, State::Paused).await;
    assert_eq!(
        paused.pause_reason,
        "the column of its task template was deleted"
    );
    let untouched = world
        .client()
        .get_schedule(GetScheduleRequest {
            name: owners.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(untouched.state(), State::Active);
}

#[tokio::test]
async fn a_project_holds_no_more_schedules_than_its_quota() {
    let world = World::with(|layers| layers.set("limits.max_schedules_per_project", 2)).await;
    for _ in 0..2 {
        world.notify_schedule(cron("0 9 * * *", "UTC")).await;
    }
    let status = world
        .client()
        .create_schedule(taskmesh_contracts::scheduler_v1::CreateScheduleRequest {
            parent: world.project.clone(),
            schedule: Some(Schedule {
                display_name: "one too many".into(),
                trigger: Some(cron("0 9 * * *", "UTC")),
                action: Some(notify()),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect_err("over the quota");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "SCHEDULE_QUOTA_EXCEEDED");
}
