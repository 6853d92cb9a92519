//! Notifications across the platform: a member added and a task assigned through the gateway reach
//! the member's inbox over REST, live on a Server-Sent Events stream, over grpc-web from the
//! generated TypeScript client (resumed from a cursor), and by email.

use std::time::Duration;

use serde_json::json;
use taskmesh_testing::Stack;

use crate::harness::{Platform, Rest, poll};
use crate::{PASSWORD, column, project_with_board};

/// Reads a Server-Sent Events response until its text holds every one of `wanted`.
async fn read_events(response: &mut reqwest::Response, wanted: &[&str]) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !wanted.iter().all(|w| text.contains(w)) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("events so far: {text}"))
            .expect("the stream")
            .expect("the stream goes on");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_the_inbox_a_live_stream_grpc_web_and_email() {
    let stack = Stack::load();
    let platform = Platform::start(&stack).await;
    let mut ada = Rest::new(&platform.base);
    ada.register("ada", PASSWORD).await;
    let mut bob = Rest::new(&platform.base);
    let session = bob.register("bob", PASSWORD).await;
    let bob_token = session["accessToken"].as_str().expect("token").to_owned();
    let (project, columns) = project_with_board(&ada).await;

    // bob listens before anything happens.
    let mut events = bob
        .client
        .get(bob.url("/v1/users/bob/notifications:subscribe"))
        .bearer_auth(&bob_token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("subscribe");
    assert_eq!(events.status().as_u16(), 200);

    let (status, member) = ada
        .post(
            &format!("/v1/{project}/members"),
            json!({"user": "users/bob", "role": "ROLE_MEMBER"}),
        )
        .await;
    assert_eq!(status, 200, "{member}");
    let (status, task) = ada
        .post(
            &format!("/v1/{project}/tasks"),
            json!({
                "title": "Prepare the demo",
                "column": column(&columns, "COLUMN_KIND_TODO"),
                "assignee": "users/bob",
            }),
        )
        .await;
    assert_eq!(status, 200, "{task}");
    let live = read_events(
        &mut events,
        &["added you to E2E", "assigned you “Prepare the demo”"],
    )
    .await;
    assert!(live.starts_with("event: message\ndata: {"), "{live}");
    drop(events);

    let listed = poll("bob's inbox", || async {
        let (_, listed) = bob.get("/v1/users/bob/notifications").await;
        (listed["notifications"].as_array().map_or(0, Vec::len) == 2).then_some(listed)
    })
    .await;
    assert_eq!(listed["unreadCount"], "2", "{listed}");
    let newest = &listed["notifications"][0];
    assert_eq!(newest["kind"], "NOTIFICATION_KIND_TASK_ASSIGNED");
    assert_eq!(newest["actor"], "users/ada");
    assert_eq!(newest["resource"], task["name"]);
    let (status, read) = bob
        .post(
            &format!("/v1/{}:markRead", newest["name"].as_str().expect("name")),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["read"], true);
    let (_, unread) = bob
        .get("/v1/users/bob/notifications?filter=read%20%3D%20false")
        .await;
    assert_eq!(unread["notifications"].as_array().map(Vec::len), Some(1));
    // Nobody reads another's inbox.
    let (status, refused) = ada.get("/v1/users/bob/notifications").await;
    assert_eq!(status, 403, "{refused}");

    // grpc-web, as a browser: the stream resumed from the first notification's cursor.
    let first_cursor = listed["notifications"][1]["cursor"]
        .as_str()
        .expect("cursor");
    let root = std::env::current_dir()
        .expect("cwd")
        .ancestors()
        .find(|dir| dir.join("buf.yaml").is_file())
        .expect("the repository root")
        .to_owned();
    let output = std::process::Command::new("bash")
        .arg(root.join("tests/clients/typescript/smoke.sh"))
        .args([
            &platform.base,
            &bob_token,
            "notifications.mjs",
            "users/bob",
            first_cursor,
            "1",
        ])
        .output()
        .expect("run the TypeScript client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("assigned you “Prepare the demo”"),
        "{stdout}"
    );
    assert!(!stdout.contains("added you"), "resumed after it: {stdout}");

    // Both were emailed to bob's address.
    let mails = platform.smtp.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().all(|m| m.header("To") == "bob@example.org"));
    assert!(
        mails
            .iter()
            .any(|m| m.text_header("Subject").contains("Prepare the demo"))
    );
    platform.clean_up();
}
