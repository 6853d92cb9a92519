//! `kill -9` of the tasks service under load: after the restart its read model catches up with
//! every acknowledged task (nothing lost, nothing twice), and the test reports how long that took
//! after the service was ready again (it was 25.7 s when consumers waited 30 s for the
//! acknowledgements the killed process never sent).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use taskmesh_testing::Stack;

use crate::harness::{Platform, ROOMY_RATE_LIMITS, Rest, roomy_limits};
use crate::{column, project_with_board};

/// Concurrent clients creating tasks.
const CLIENTS: usize = 3;
/// Tasks each client tries to create.
const PER_CLIENT: usize = 300;
/// Acknowledged creations before the kill.
const KILL_AFTER: usize = 300;
/// Longer than this means messages waited out a long ack wait again.
const CATCH_UP_BOUND: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_model_catches_up_quickly_after_a_kill_9_under_load() {
    let stack = Stack::load();
    // Lifted limits: the gateway would answer 429 to one user creating this fast.
    let mut platform = Platform::start_with(&stack, &roomy_limits(), ROOMY_RATE_LIMITS).await;
    let mut rest = Rest::new(&platform.base);
    let session = rest.register("loader", "correct horse battery").await;
    let token = session["accessToken"].as_str().expect("token").to_owned();
    let (project, columns) = project_with_board(&rest).await;
    let todo = column(&columns, "COLUMN_KIND_TODO");

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let mut rest = Rest::new(&platform.base);
        rest.sign_in(&token);
        let (project, todo, acknowledged, killed) = (
            project.clone(),
            todo.clone(),
            Arc::clone(&acknowledged),
            Arc::clone(&killed),
        );
        clients.push(tokio::spawn(async move {
            let mut names = Vec::new();
            for i in 0..PER_CLIENT {
                let (status, task) = rest
                    .post(
                        &format!("/v1/{project}/tasks"),
                        json!({"title": format!("load {client}-{i}"), "column": todo}),
                    )
                    .await;
                if status != 200 {
                    // Once the service is gone this client stops (what it sent last may or may
                    // not have committed, but was not acknowledged); before, nothing may fail.
                    assert!(
                        killed.load(Ordering::SeqCst),
                        "refused before the kill: {status} {task}"
                    );
                    break;
                }
                names.push(task["name"].as_str().expect("name").to_owned());
                acknowledged.fetch_add(1, Ordering::SeqCst);
            }
            names
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            Instant::now() < deadline && !clients.iter().all(|c| c.is_finished()),
            "the clients stopped after {} creations",
            acknowledged.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killed.store(true, Ordering::SeqCst);
    let ready = platform.kill_and_restart("tasks").await;
    let mut expected = HashSet::new();
    for client in clients {
        expected.extend(client.await.expect("client"));
    }
    assert!(
        expected.len() >= KILL_AFTER,
        "{} acknowledged",
        expected.len()
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let (listed, caught_up) = loop {
        let (status, page) = rest
            .get(&format!("/v1/{project}/tasks?pageSize=1000"))
            .await;
        if status == 200 {
            let names: Vec<String> = page["tasks"]
                .as_array()
                .map(|tasks| {
                    tasks
                        .iter()
                        .filter_map(|t| t["name"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let present: HashSet<&String> = names.iter().collect();
            if expected.iter().all(|name| present.contains(name)) {
                break (names, ready.elapsed());
            }
        }
        assert!(
            Instant::now() < deadline,
            "the read model never caught up with {} acknowledged tasks",
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "kill -9 of tasks after {KILL_AFTER} acknowledged creations ({} in all): the read model held every acknowledged task {:.2} s after the restarted service was ready",
        expected.len(),
        caught_up.as_secs_f64()
    );
    let unique: HashSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "no task twice");
    assert!(
        caught_up < CATCH_UP_BOUND,
        "catch-up took {caught_up:?}: the restarted consumer waited for acknowledgements"
    );
    platform.stop();
    platform.clean_up();
}
