//! Firing: what fires matches :preview and an expectation written here; misfire policies after
//! the scheduler was down; deletion stops a schedule; two replicas and a `kill -9` still fire
//! every occurrence exactly once, and the tasks service creates exactly one task for each.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use taskmesh_contracts::projects_v1::ColumnKind;
use taskmesh_contracts::scheduler_v1::{
    Action, Cron, DeleteScheduleRequest, GetScheduleRequest, Interval, MisfirePolicy,
    PreviewScheduleRequest, Recurrence, State, TaskTemplate, Trigger, action, trigger,
};
use taskmesh_contracts::tasks_v1::ListTasksRequest;
use taskmesh_contracts::tasks_v1::task_service_client::TaskServiceClient;
use taskmesh_testing::{DefaultCaller, free_port, service_command, wait_ready};

use crate::helpers::{World, occurrences, secs, ts, whole_seconds_from_now};

fn every_second(start: DateTime<Utc>, end: Option<DateTime<Utc>>) -> Trigger {
    Trigger {
        kind: Some(trigger::Kind::Interval(Interval {
            every: Some(secs(1)),
            start_time: Some(ts(start)),
            end_time: end.map(ts),
        })),
    }
}

fn ical(time: DateTime<Utc>) -> String {
    time.format("%Y%m%dT%H%M%SZ").to_string()
}

async fn preview(world: &World, name: &str) -> Vec<DateTime<Utc>> {
    world
        .client()
        .preview_schedule(PreviewScheduleRequest {
            name: name.to_owned(),
            count: 20,
        })
        .await
        .expect("preview")
        .into_inner()
        .fire_times
        .into_iter()
        .filter_map(|f| taskmesh_mesh::time::from_timestamp(f.fire_time))
        .collect()
}

async fn state(world: &World, name: &str) -> State {
    world
        .client()
        .get_schedule(GetScheduleRequest {
            name: name.to_owned(),
        })
        .await
        .expect("get")
        .into_inner()
        .state()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_fires_is_what_preview_said_and_what_the_rule_means() {
    let world = World::new().await;
    let start = whole_seconds_from_now(2);
    let at = |s: i64| start + TimeDelta::seconds(s);

    let interval = world
        .notify_schedule(every_second(start, Some(at(3))))
        .await;
    // Every second on a zone's wall clock (Kathmandu is UTC+05:45: a zone that is not whole
    // hours off), from the start to 3 s later.
    let cron = world
        .notify_schedule(Trigger {
            kind: Some(trigger::Kind::Cron(Cron {
                expression: "* * * * * *".into(),
                time_zone: "Asia/Kathmandu".into(),
                start_time: Some(ts(start)),
                end_time: Some(ts(at(3))),
            })),
        })
        .await;
    let counted = world
        .notify_schedule(Trigger {
            kind: Some(trigger::Kind::Recurrence(Recurrence {
                rule: format!(
                    "DTSTART:{}\nRRULE:FREQ=SECONDLY;INTERVAL=2;COUNT=3",
                    ical(start)
                ),
            })),
        })
        .await;
    let until = world
        .notify_schedule(Trigger {
            kind: Some(trigger::Kind::Recurrence(Recurrence {
                rule: format!(
                    "DTSTART:{}\nRRULE:FREQ=SECONDLY;UNTIL={}\nEXDATE:{}",
                    ical(start),
                    ical(at(3)),
                    ical(at(1))
                ),
            })),
        })
        .await;
    let expected = [
        (&interval.name, vec![at(0), at(1), at(2), at(3)]),
        (&cron.name, vec![at(0), at(1), at(2), at(3)]),
        (&counted.name, vec![at(0), at(2), at(4)]),
        (&until.name, vec![at(0), at(2), at(3)]),
    ];
    for (name, times) in &expected {
        assert_eq!(&preview(&world, name).await, times, "preview of {name}");
    }
    for (name, times) in &expected {
        let fired = world
            .fired(name, times.len(), Duration::from_secs(20))
            .await;
        assert_eq!(&fired, times, "fired by {name}");
    }
    // Nothing more comes, and each has completed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events = world.triggered().await;
    for (name, times) in &expected {
        assert_eq!(&occurrences(&events, name), times, "no more from {name}");
        assert_eq!(state(&world, name).await, State::Completed, "{name}");
    }
    // Each firing carries its own occurrence id and its sequence number.
    let ids: HashSet<_> = events.iter().map(|e| e.occurrence_id.clone()).collect();
    assert_eq!(ids.len(), events.len());
    let sequences: Vec<i64> = events
        .iter()
        .filter(|e| e.schedule == interval.name)
        .map(|e| e.sequence)
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_schedule_never_fires_again() {
    let world = World::new().await;
    let schedule = world
        .notify_schedule(every_second(whole_seconds_from_now(0), None))
        .await;
    let before = world
        .fired(&schedule.name, 2, Duration::from_secs(10))
        .await;
    assert!(before.len() >= 2);
    world
        .client()
        .delete_schedule(DeleteScheduleRequest {
            name: schedule.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("delete");
    let at_delete = occurrences(&world.triggered().await, &schedule.name).len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = occurrences(&world.triggered().await, &schedule.name).len();
    assert_eq!(after, at_delete, "no firing after the delete");
}

/// The misfire threshold of the policy tests: late enough that a busy test machine does not
/// miss occurrences while the scheduler runs, well below the outage.
const THRESHOLD_MS: i64 = 1500;

/// Creates an every-second schedule with `policy`, lets it fire twice, stops the scheduler for
/// five seconds and starts it again; returns the occurrences fired, what each firing said it had
/// missed, and the instant the scheduler came back.
async fn down_and_up(policy: MisfirePolicy) -> (Vec<DateTime<Utc>>, Vec<i64>, DateTime<Utc>) {
    let mut world =
        World::with(|layers| layers.set("firing.misfire_threshold_ms", THRESHOLD_MS)).await;
    let schedule = world
        .create(
            every_second(whole_seconds_from_now(0), None),
            crate::helpers::notify(),
            |mut s| {
                s.misfire_policy = policy as i32;
                s
            },
        )
        .await;
    world
        .fired(&schedule.name, 2, Duration::from_secs(10))
        .await;
    world.scheduler.stop().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let back = Utc::now();
    world.restart().await;
    let events = loop {
        let events = world.triggered().await;
        let late = events
            .iter()
            .filter(|e| e.schedule == schedule.name)
            .filter_map(|e| taskmesh_mesh::time::from_timestamp(e.fire_time))
            .filter(|t| *t >= back + TimeDelta::seconds(2))
            .count();
        if late >= 1 {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mine: Vec<_> = events
        .into_iter()
        .filter(|e| e.schedule == schedule.name)
        .collect();
    (
        mine.iter()
            .filter_map(|e| taskmesh_mesh::time::from_timestamp(e.occurrence_time))
            .collect(),
        mine.iter().map(|e| e.missed).collect(),
        back,
    )
}

/// Seconds between consecutive occurrences.
fn steps(times: &[DateTime<Utc>]) -> Vec<i64> {
    times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fire_all_fires_every_occurrence_missed_while_down() {
    let (times, missed, _) = down_and_up(MisfirePolicy::FireAll).await;
    assert!(times.len() >= 8, "{times:?}");
    assert!(
        steps(&times).iter().all(|s| *s == 1),
        "no occurrence left out: {times:?}"
    );
    assert!(missed.iter().all(|m| *m == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fire_once_fires_one_occurrence_for_everything_missed() {
    let (times, missed, back) = down_and_up(MisfirePolicy::FireOnce).await;
    // One firing stands for the outage: a gap of several seconds before it, and it says how
    // many it stands for.
    let gap = steps(&times).iter().position(|s| *s > 1).expect("one gap");
    assert!(steps(&times)[gap] >= 3, "back at {back}: {times:?}");
    assert_eq!(missed[gap + 1], steps(&times)[gap] - 1, "{missed:?}");
    assert_eq!(
        steps(&times).iter().filter(|s| **s > 1).count(),
        1,
        "{times:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_fires_nothing_that_was_missed() {
    let (times, missed, back) = down_and_up(MisfirePolicy::Skip).await;
    let gap = steps(&times).iter().position(|s| *s > 1).expect("one gap");
    // The first firing after the gap is on time (not older than the threshold when the
    // scheduler came back) and reports the skipped ones.
    assert!(
        times[gap + 1] >= back - TimeDelta::milliseconds(THRESHOLD_MS),
        "back at {back}: {times:?} {missed:?}"
    );
    assert!(missed[gap + 1] >= 3, "{missed:?}");
    assert_eq!(
        steps(&times).iter().filter(|s| **s > 1).count(),
        1,
        "{times:?}"
    );
}

fn start_process(world: &World, token_file: &std::path::Path, admin: u16) -> Child {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_scheduler"));
    service_command(
        binary,
        &world.stack,
        &world.db,
        &world.nats.url(),
        token_file,
        admin,
    )
    .env(
        "TASKMESH_PROJECTS__ENDPOINT",
        format!("http://{}", world.projects_addr),
    )
    .env("TASKMESH_FIRING__POLL_MS", "50")
    .env("TASKMESH_FIRING__BATCH", "5")
    .spawn()
    .expect("start the scheduler")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_occurrence_fires_exactly_once_across_replicas_and_a_kill_9() {
    const SCHEDULES: usize = 20;
    const EACH: usize = 10;
    let mut world = World::new().await;
    // The in-process scheduler only serves the API here; two processes fire.
    let dir = std::env::temp_dir().join(format!(
        "taskmesh-scheduler-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let token_file = dir.join("token");
    std::fs::write(&token_file, &world.stack.vault_root_token).expect("token file");
    // Each firing creates a task: the tasks created are counted too.
    let tasks = world.start_tasks().await;
    let start = whole_seconds_from_now(4);
    let template = Action {
        kind: Some(action::Kind::CreateTask(TaskTemplate {
            column: world.column(ColumnKind::Todo),
            title: "Every second".into(),
            ..Default::default()
        })),
    };
    let mut names = Vec::new();
    for _ in 0..SCHEDULES {
        let schedule = world
            .create(
                every_second(start, Some(start + TimeDelta::seconds(EACH as i64 - 1))),
                template.clone(),
                |s| s,
            )
            .await;
        names.push(schedule.name);
    }
    world.scheduler.stop().await;
    let (admin_a, admin_b) = (free_port(), free_port());
    let mut a = start_process(&world, &token_file, admin_a);
    let mut b = start_process(&world, &token_file, admin_b);
    wait_ready(admin_a).await;
    wait_ready(admin_b).await;
    // Half-way through, one replica dies without a chance to clean up.
    let half = start + TimeDelta::seconds(EACH as i64 / 2);
    if let Ok(wait) = (half - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    let before_kill = world.triggered().await.len();
    a.kill().expect("kill -9");
    a.wait().expect("reaped");
    assert!(
        before_kill > 0 && before_kill < SCHEDULES * EACH,
        "the kill came in the middle ({before_kill} fired)"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let events = loop {
        let events = world.triggered().await;
        if events.len() >= SCHEDULES * EACH || tokio::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events_after = world.triggered().await;
    assert_eq!(events_after.len(), events.len(), "nothing more fired");
    assert_eq!(events.len(), SCHEDULES * EACH, "every occurrence fired");
    let mut per_schedule: HashMap<&str, Vec<i64>> = HashMap::new();
    for event in &events {
        per_schedule
            .entry(event.schedule.as_str())
            .or_default()
            .push(event.sequence);
    }
    for name in &names {
        let sequences = &per_schedule[name.as_str()];
        assert_eq!(
            sequences,
            &(1..=EACH as i64).collect::<Vec<_>>(),
            "{name}: each occurrence once, in order"
        );
    }
    // The stored counts agree: no firing was made twice and hidden by the stream's
    // de-duplication of the repeated event id.
    let mut db = world.db.connect(&world.stack).await;
    let counts: Vec<i64> = sqlx::query_scalar("SELECT fire_count FROM schedules")
        .fetch_all(&mut db)
        .await
        .expect("counts");
    assert_eq!(counts, vec![EACH as i64; SCHEDULES]);

    // One task per occurrence, each linked to its own.
    let mut client = TaskServiceClient::with_interceptor(tasks, DefaultCaller("owner"));
    let mut created = Vec::new();
    for _ in 0..150 {
        created = client
            .list_tasks(ListTasksRequest {
                parent: world.project.clone(),
                page_size: 1000,
                ..Default::default()
            })
            .await
            .expect("list tasks")
            .into_inner()
            .tasks;
        if created.len() >= SCHEDULES * EACH {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let occurrences: HashSet<(String, i64)> = created
        .iter()
        .filter_map(|t| t.origin.as_ref())
        .map(|o| {
            (
                o.schedule.clone(),
                o.occurrence_time.map_or(0, |t| t.seconds),
            )
        })
        .collect();
    assert_eq!(created.len(), SCHEDULES * EACH, "one task per occurrence");
    assert_eq!(
        occurrences.len(),
        SCHEDULES * EACH,
        "each for its own occurrence"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &b.id().to_string()])
        .status();
    let _ = b.wait();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_schedule_fires_nothing_until_it_is_resumed() {
    use taskmesh_contracts::scheduler_v1::{PauseScheduleRequest, ResumeScheduleRequest};

    let world = World::with(|layers| layers.set("firing.misfire_threshold_ms", THRESHOLD_MS)).await;
    let schedule = world
        .notify_schedule(every_second(whole_seconds_from_now(0), None))
        .await;
    world
        .fired(&schedule.name, 1, Duration::from_secs(10))
        .await;
    world
        .client()
        .pause_schedule(PauseScheduleRequest {
            name: schedule.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("pause");
    let at_pause = occurrences(&world.triggered().await, &schedule.name).len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        occurrences(&world.triggered().await, &schedule.name).len(),
        at_pause,
        "nothing while paused"
    );
    world
        .client()
        .resume_schedule(ResumeScheduleRequest {
            name: schedule.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("resume");
    // What passed while paused collapses into one firing (the default policy, FIRE_ONCE).
    let times = world
        .fired(&schedule.name, at_pause + 1, Duration::from_secs(10))
        .await;
    let events = world.triggered().await;
    let first_after = events
        .iter()
        .filter(|e| e.schedule == schedule.name)
        .nth(at_pause)
        .expect("a firing after the resume");
    assert!(first_after.missed >= 1, "{times:?} {}", first_after.missed);
}
