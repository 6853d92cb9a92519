//! Recurring tasks through the gateway: a schedule with a task template fires every second (a
//! daily schedule, sped up); each firing becomes one task, linked to its occurrence, whose job
//! reaches its target with the secret header the template was given; deleting the schedule stops
//! it.

use std::time::Duration;

use serde_json::{Value, json};
use taskmesh_testing::Stack;

use crate::harness::{Platform, Rest, poll};
use crate::targets::recording_target;
use crate::{column, project_with_board};

/// The tasks of `project` a schedule created, by occurrence time.
async fn scheduled_tasks(rest: &Rest, project: &str, schedule: &str) -> Vec<Value> {
    let (status, listed) = rest
        .get(&format!("/v1/{project}/tasks?pageSize=1000"))
        .await;
    assert_eq!(status, 200, "{listed}");
    let mut tasks: Vec<Value> = listed["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t["origin"]["schedule"] == schedule)
        .collect();
    tasks.sort_by_key(|t| t["origin"]["occurrenceTime"].as_str().map(str::to_owned));
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recurring_schedule_creates_one_task_per_occurrence_until_it_is_deleted() {
    let stack = Stack::load();
    let platform = Platform::start(&stack).await;
    let mut rest = Rest::new(&platform.base);
    rest.register("planner", "correct horse battery").await;
    let (project, columns) = project_with_board(&rest).await;
    let (target, seen) = recording_target().await;
    let secret = format!("Bearer tm-{}", uuid::Uuid::new_v4().simple());
    let start = chrono::Utc::now() + chrono::TimeDelta::seconds(2);

    let (status, schedule) = rest
        .post(
            &format!("/v1/{project}/schedules"),
            json!({
                "displayName": "Daily stand-up notes",
                "trigger": {"interval": {
                    "every": "1s",
                    "startTime": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                }},
                "action": {"createTask": {
                    "column": column(&columns, "COLUMN_KIND_TODO"),
                    "title": "Write the stand-up notes",
                    "labels": ["recurring"],
                    "dueAfter": "3600s",
                    "job": {"httpRequest": {
                        "url": format!("http://{target}/standup"),
                        "headers": {"Authorization": secret},
                    }},
                }},
            }),
        )
        .await;
    assert_eq!(status, 200, "{schedule}");
    let name = schedule["name"].as_str().expect("schedule").to_owned();
    assert_eq!(
        schedule["action"]["createTask"]["job"]["httpRequest"]["headers"]["Authorization"],
        "[redacted]"
    );
    let (status, preview) = rest.get(&format!("/v1/{name}:preview?count=3")).await;
    assert_eq!(status, 200, "{preview}");

    // Three firings, three tasks, each with its own occurrence, due an hour after it.
    let tasks = poll("three scheduled tasks", || async {
        let tasks = scheduled_tasks(&rest, &project, &name).await;
        (tasks.len() >= 3).then_some(tasks)
    })
    .await;
    let previewed: Vec<&Value> = preview["fireTimes"]
        .as_array()
        .expect("fire times")
        .iter()
        .map(|f| &f["fireTime"])
        .collect();
    for (task, fire_time) in tasks.iter().zip(&previewed) {
        assert_eq!(&&task["origin"]["occurrenceTime"], fire_time, "{task}");
        assert_eq!(task["title"], "Write the stand-up notes");
        assert_eq!(task["status"], "STATUS_TODO");
        assert_eq!(task["creator"], "users/planner");
        let occurrence = chrono::DateTime::parse_from_rfc3339(
            task["origin"]["occurrenceTime"].as_str().expect("time"),
        )
        .expect("rfc3339");
        let due = chrono::DateTime::parse_from_rfc3339(task["dueTime"].as_str().expect("due"))
            .expect("rfc3339");
        assert_eq!(due - occurrence, chrono::TimeDelta::hours(1), "{task}");
        assert_eq!(
            task["job"]["httpRequest"]["headers"]["Authorization"],
            "[redacted]"
        );
    }
    // The jobs ran with the secret, opened for each task.
    let head = poll("a scheduled job's request", || async {
        seen.lock()
            .expect("lock")
            .iter()
            .find(|h| h.starts_with("GET /standup "))
            .cloned()
    })
    .await;
    assert!(
        head.to_lowercase()
            .contains(&format!("authorization: {}", secret.to_lowercase())),
        "{head}"
    );

    let (status, deleted) = rest.delete(&format!("/v1/{name}")).await;
    assert_eq!(status, 200, "{deleted}");
    // What fired before the delete still becomes tasks; nothing after it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = scheduled_tasks(&rest, &project, &name).await.len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        scheduled_tasks(&rest, &project, &name).await.len(),
        settled,
        "no task after the delete"
    );
    let (status, gone) = rest.get(&format!("/v1/{name}")).await;
    assert_eq!(status, 404, "{gone}");
    drop(platform);
}
