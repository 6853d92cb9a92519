//! Crash safety: `kill -9` of the worker process in the middle of a burst of 200 jobs. After a
//! restart every job ends exactly once: one terminal event per execution on the stream.

use std::collections::HashMap;
use std::process::{Child, Command};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use taskmesh_contracts::tasks_v1::{HttpRequest, Job, job::Kind};
use taskmesh_testing::{NatsServer, Stack, TestDatabase, free_port, service_command, wait_ready};

use crate::helpers::http_server;

fn start(
    stack: &Stack,
    db: &TestDatabase,
    nats: &NatsServer,
    token_file: &std::path::Path,
    admin: u16,
) -> Child {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_execution"));
    service_command(binary, stack, db, &nats.url(), token_file, admin)
        .env("TASKMESH_WORKERS__CONCURRENCY", "8")
        .env("TASKMESH_WORKERS__LEASE_MS", "1500")
        .env("TASKMESH_WORKERS__POLL_MS", "50")
        .env("TASKMESH_EGRESS__ALLOW_NETWORKS", "[\"127.0.0.1/32\"]")
        .spawn()
        .expect("start the execution service")
}

/// Terminal events per execution name, read from the EXECUTION stream.
async fn terminal_events(nats: &NatsServer) -> HashMap<String, usize> {
    let client = async_nats::connect(nats.url()).await.expect("nats");
    let js = jetstream::new(client);
    let mut counts = HashMap::new();
    let Ok(stream) = js.get_stream("EXECUTION").await else {
        return counts;
    };
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("consumer");
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_millis(300))
            .messages()
            .await
            .expect("fetch");
        let mut got = 0;
        while let Some(message) = batch.next().await {
            let message = message.expect("message");
            got += 1;
            let headers = message.headers.clone().unwrap_or_default();
            let kind = headers
                .get("Taskmesh-Event-Type")
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            if kind.ends_with("ExecutionCompleted") || kind.ends_with("ExecutionFailed") {
                let name = headers
                    .get("Taskmesh-Subject")
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                *counts.entry(name).or_insert(0) += 1;
            }
        }
        if got == 0 {
            return counts;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_every_job_of_a_burst_ends_exactly_once() {
    const JOBS: usize = 200;
    let stack = Stack::load();
    let nats = NatsServer::start(&stack).await;
    let db = TestDatabase::create(&stack, "execution_crash").await;
    let dir =
        std::env::temp_dir().join(format!("taskmesh-crash-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let token_file = dir.join("token");
    std::fs::write(&token_file, &stack.vault_root_token).expect("token file");
    let (http, calls) = http_server().await;

    let admin = free_port();
    let mut first = start(&stack, &db, &nats, &token_file, admin);
    wait_ready(admin).await;

    // The jobs take a while (the page is slow to find: 300 ms per call via the flaky route's
    // successes), so that many are running when the worker dies.
    let world = crate::helpers::Publisher::new(&nats).await;
    for i in 0..JOBS {
        let job = Job {
            kind: Some(Kind::HttpRequest(HttpRequest {
                url: format!("http://{http}/pause/{i}"),
                expected_status: 200,
                ..Default::default()
            })),
            max_attempts: 5,
            ..Default::default()
        };
        world
            .created(
                &format!("projects/p/tasks/{}", uuid::Uuid::now_v7().simple()),
                job,
            )
            .await;
    }
    // Let part of the burst finish, then kill -9 in the middle of it.
    for _ in 0..200 {
        if calls.total_prefix("/pause/") >= JOBS / 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().expect("kill -9");
    first.wait().expect("reaped");
    let done_before = terminal_events(&nats).await.len();
    assert!(
        done_before < JOBS,
        "the kill came in the middle of the burst ({done_before} done)"
    );

    let admin = free_port();
    let mut second = start(&stack, &db, &nats, &token_file, admin);
    wait_ready(admin).await;
    let mut counts = HashMap::new();
    for _ in 0..600 {
        counts = terminal_events(&nats).await;
        if counts.len() >= JOBS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counts.len(), JOBS, "every job ended");
    let duplicated: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        duplicated.is_empty(),
        "one terminal event per job: {duplicated:?}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status();
    let _ = second.wait();
    let _ = std::fs::remove_dir_all(dir);
}
