//! Secrets inside jobs: a job's `Authorization` header reaches the server it is for, and nothing
//! else holds it in the clear: not the answers to readers, not the events on NATS, not the tasks'
//! or the executions' databases, not the logs.

use std::time::Duration;

use serde_json::{Value, json};
use taskmesh_testing::Stack;

use crate::harness::{Platform, Rest, poll};
use crate::targets::recording_target;
use crate::{column, project_with_board};

/// Waits until the target has seen a request for `path`; returns its head.
async fn request_for(seen: &std::sync::Mutex<Vec<String>>, path: &str) -> String {
    for _ in 0..300 {
        let found = seen
            .lock()
            .expect("lock")
            .iter()
            .find(|head| head.starts_with(&format!("GET {path} ")))
            .cloned();
        if let Some(head) = found {
            return head;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the job never called {path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_secret_header_is_sealed_everywhere_but_in_the_request_it_is_for() {
    let stack = Stack::load();
    let mut platform = Platform::start(&stack).await;
    let mut rest = Rest::new(&platform.base);
    rest.register("sealer", "correct horse battery").await;
    let (project, columns) = project_with_board(&rest).await;
    let (target, seen) = recording_target().await;
    let secret = format!("Bearer tm-{}", uuid::Uuid::new_v4().simple());

    let (status, task) = rest
        .post(
            &format!("/v1/{project}/tasks"),
            json!({
                "title": "Call the hook",
                "column": column(&columns, "COLUMN_KIND_TODO"),
                "job": {"httpRequest": {
                    "url": format!("http://{target}/first"),
                    "headers": {"Authorization": secret, "Accept": "text/plain"}
                }}
            }),
        )
        .await;
    assert_eq!(status, 200, "{task}");
    let headers = &task["job"]["httpRequest"]["headers"];
    assert_eq!(headers["Authorization"], "[redacted]", "{task}");
    assert_eq!(headers["Accept"], "text/plain", "{task}");
    let name = task["name"].as_str().expect("task").to_owned();

    // The worker opened it for the request it is for...
    let head = request_for(&seen, "/first").await;
    assert!(
        head.to_lowercase()
            .contains(&format!("authorization: {}", secret.to_lowercase())),
        "{head}"
    );
    // ...and the execution shows it redacted.
    let execution = poll("the first execution succeeding", || async {
        let (_, listed) = rest.get(&format!("/v1/{name}/executions")).await;
        (listed["executions"][0]["state"] == "EXECUTION_STATE_SUCCEEDED")
            .then(|| listed["executions"][0].clone())
    })
    .await;
    assert_eq!(
        execution["job"]["httpRequest"]["headers"]["Authorization"], "[redacted]",
        "{execution}"
    );

    // A client sends the job back as it read it, with another URL: the secret it never saw goes
    // with the new request.
    let mut job: Value = task["job"].clone();
    job["httpRequest"]["url"] = json!(format!("http://{target}/second"));
    let (status, updated) = rest
        .patch(
            &format!("/v1/{name}?updateMask=job"),
            json!({"name": name, "job": job}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        updated["job"]["httpRequest"]["headers"]["Authorization"],
        "[redacted]"
    );
    let head = request_for(&seen, "/second").await;
    assert!(
        head.to_lowercase()
            .contains(&format!("authorization: {}", secret.to_lowercase())),
        "{head}"
    );
    poll("the second execution succeeding", || async {
        let (_, listed) = rest.get(&format!("/v1/{name}/executions")).await;
        let states: Vec<&Value> = listed["executions"]
            .as_array()?
            .iter()
            .map(|e| &e["state"])
            .collect();
        (states.len() == 2 && states.iter().all(|s| *s == "EXECUTION_STATE_SUCCEEDED"))
            .then_some(())
    })
    .await;

    // Nothing at rest holds it in the clear: the streams...
    let js = async_nats::jetstream::new(
        taskmesh_events::nats::connect_once(&platform.nats_url(), "operator", None)
            .await
            .expect("nats"),
    );
    let mut scanned = 0;
    for name in ["TASKS", "EXECUTION"] {
        let stream = js.get_stream(name).await.expect("stream");
        let last = stream.cached_info().state.last_sequence;
        for sequence in 1..=last {
            let Ok(message) = stream.get_raw_message(sequence).await else {
                continue;
            };
            scanned += 1;
            let payload = String::from_utf8_lossy(&message.payload);
            assert!(
                !payload.contains(&secret),
                "{name} #{sequence} holds the secret"
            );
        }
    }
    assert!(scanned >= 4, "only {scanned} events scanned");
    // ...nor any service's database.
    for (service, db) in platform.databases() {
        assert_eq!(
            db.tables_containing(&stack, &secret).await,
            Vec::<String>::new(),
            "{service}'s database holds the secret"
        );
    }
    // ...nor a log.
    platform.stop();
    for (path, text) in platform.logs() {
        assert!(
            !text.contains(&secret),
            "{} holds the secret",
            path.display()
        );
    }
    platform.clean_up();
}
