//! `kill -9` of the notifications service in the middle of a burst: after a restart every
//! notification exists once, and no email or webhook delivery is lost. What is delivered twice
//! (the in-flight deliveries of the killed process) carries the same Message-ID / webhook-id, and
//! the test prints how many there were.

use std::collections::HashSet;
use std::process::Child;
use std::time::Duration;

use chrono::Utc;
use taskmesh_contracts::scheduler_v1::ReminderDue;
use taskmesh_mesh::time::to_timestamp;
use taskmesh_testing::{free_port, service_command, wait_ready};

use crate::helpers::{OWNER, Receiver, World};

const EVENTS: usize = 500;
const USERS: usize = 10;

fn start_process(world: &World, token_file: &std::path::Path, admin: u16) -> Child {
    service_command(
        std::path::Path::new(env!("CARGO_BIN_EXE_notifications")),
        &world.stack,
        &world.db,
        &world.nats.url(),
        token_file,
        admin,
    )
    .env(
        "TASKMESH_PROJECTS__ENDPOINT",
        format!("http://{}", world.projects_addr()),
    )
    .env("TASKMESH_EMAIL__POLL_MS", "100")
    .env("TASKMESH_WEBHOOKS__POLL_MS", "100")
    .env("TASKMESH_WEBHOOKS__LEASE_MS", "3000")
    .env("TASKMESH_EMAIL__LEASE_MS", "3000")
    .env(
        "TASKMESH_WEBHOOKS__EGRESS__ALLOW_NETWORKS",
        "[\"127.0.0.1/32\"]",
    )
    .spawn()
    .expect("start the notifications service")
}

async fn count(world: &World, sql: &str) -> i64 {
    let mut db = world.db.connect(&world.stack).await;
    sqlx::query_scalar(sql)
        .fetch_one(&mut db)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_during_a_burst_loses_nothing_and_repeats_only_in_flight_deliveries() {
    let mut world = World::new().await;
    let receiver = Receiver::start(&[]).await;
    world
        .webhooks(OWNER)
        .create_webhook(world.new_webhook(&receiver.url, ""))
        .await
        .expect("webhook");
    for n in 0..USERS {
        world
            .register(&format!("user{n}"), &format!("user{n}@example.test"))
            .await;
    }
    world.settle().await;
    // From here on a process does the work, and it is the one that dies.
    world.notifications.stop().await;
    let dir = std::env::temp_dir().join(format!(
        "taskmesh-notifications-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let token_file = dir.join("token");
    std::fs::write(&token_file, &world.stack.vault_root_token).expect("token file");
    let admin = free_port();
    let mut first = start_process(&world, &token_file, admin);
    wait_ready(admin).await;

    let publisher = world.publisher();
    let project = world.project.clone();
    let burst = tokio::spawn(async move {
        for n in 0..EVENTS {
            let task = format!("{project}/tasks/{:032x}", n + 1);
            publisher
                .publish(
                    &task,
                    &ReminderDue {
                        task: task.clone(),
                        reminder: format!("{task}/reminders/r"),
                        recipient: format!("users/user{}", n % USERS),
                        title: format!("Task {n}"),
                        due_time: Some(to_timestamp(Utc::now())),
                        remind_time: Some(to_timestamp(Utc::now())),
                    },
                )
                .await;
        }
    });
    // Killed once it is well into the burst, with deliveries in flight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while count(&world, "SELECT count(*) FROM emails WHERE state = 2").await < 100 {
        assert!(tokio::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().expect("kill -9");
    let _ = first.wait();
    burst.await.expect("the burst");

    let admin = free_port();
    let mut second = start_process(&world, &token_file, admin);
    wait_ready(admin).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let notifications = count(&world, "SELECT count(*) FROM notifications").await;
        let emails = count(&world, "SELECT count(*) FROM emails WHERE state = 2").await;
        let hooks = count(&world, "SELECT count(*) FROM deliveries WHERE state = 2").await;
        if notifications == EVENTS as i64 && emails == EVENTS as i64 && hooks == EVENTS as i64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "notifications {notifications}, emails sent {emails}, webhooks delivered {hooks}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = second.kill();
    let _ = second.wait();

    // Every notification once (one per event).
    let sources = count(&world, "SELECT count(DISTINCT source) FROM notifications").await;
    assert_eq!(sources, EVENTS as i64);
    // Every email arrived; a repeat carries the same Message-ID.
    let mails = world.smtp.wait_for(EVENTS, Duration::from_secs(10)).await;
    let message_ids: HashSet<String> = mails.iter().map(|m| m.header("Message-ID")).collect();
    assert_eq!(message_ids.len(), EVENTS, "every email arrived");
    // Every webhook call arrived; a repeat carries the same webhook-id.
    let calls = receiver.received();
    let webhook_ids: HashSet<&str> = calls
        .iter()
        .map(|c| c.headers["webhook-id"].as_str())
        .collect();
    assert_eq!(webhook_ids.len(), EVENTS, "every webhook call arrived");
    println!(
        "kill -9 during {EVENTS} events: {} emails for {EVENTS} notifications ({} twice), {} webhook calls ({} twice)",
        mails.len(),
        mails.len() - EVENTS,
        calls.len(),
        calls.len() - EVENTS
    );
    let _ = std::fs::remove_dir_all(&dir);
}
