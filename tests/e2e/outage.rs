//! A PostgreSQL outage while events are being consumed: the execution service's database goes
//! away for 60 s while tasks with jobs keep being created; its intake consumer waits the outage out
//! in place (nothing is dead-lettered) and every task's execution, run and job status converge
//! once the database is back.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use taskmesh_testing::{Stack, TcpProxy};

use crate::harness::{Platform, ROOMY_RATE_LIMITS, Rest};
use crate::targets::job_target;
use crate::{column, project_with_board};

/// How long the database is away.
const OUTAGE: Duration = Duration::from_secs(60);
/// Tasks with a job created during the outage.
const TASKS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_during_consumption_dead_letters_nothing_and_everything_converges() {
    let stack = Stack::load();
    let proxy = TcpProxy::start(stack.pg_port).await;
    let mut platform = Platform::start_custom(
        &stack,
        &[(
            "TASKMESH_EGRESS__ALLOW_NETWORKS",
            "[\"127.0.0.1/32\"]".to_owned(),
        )],
        &[(
            "execution",
            "TASKMESH_DATABASE__PORT",
            proxy.port().to_string(),
        )],
        ROOMY_RATE_LIMITS,
    )
    .await;
    let mut rest = Rest::new(&platform.base);
    rest.register("outage", "correct horse battery").await;
    let (project, columns) = project_with_board(&rest).await;
    let target = job_target().await;

    proxy.cut();
    let outage = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let (status, task) = rest
            .post(
                &format!("/v1/{project}/tasks"),
                json!({
                    "title": format!("Crawl {i}"),
                    "column": column(&columns, "COLUMN_KIND_TODO"),
                    "job": {"webCrawl": {"url": format!("http://{target}/page"), "query": "mesh"}}
                }),
            )
            .await;
        assert_eq!(status, 200, "tasks are still taken: {task}");
        tasks.push(task["name"].as_str().expect("task").to_owned());
    }
    // While the database is away the execution service answers UNAVAILABLE, with nothing of the
    // database's own words.
    let (status, body) = rest.get(&format!("/v1/{}/executions", tasks[0])).await;
    assert_eq!(status, 503, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains("pool") && !message.contains("connection"),
        "{body}"
    );
    tokio::time::sleep(OUTAGE.saturating_sub(outage.elapsed())).await;
    proxy.restore();
    let restored = Instant::now();

    for task in &tasks {
        converge(&rest, task).await;
    }
    let converged = restored.elapsed();
    println!(
        "database outage of {:.1} s: {TASKS} tasks created during it; every execution ran and every task showed its job's outcome {:.2} s after the database came back",
        outage.elapsed().as_secs_f64() - converged.as_secs_f64(),
        converged.as_secs_f64()
    );

    let js = async_nats::jetstream::new(
        taskmesh_events::nats::connect_once(&platform.nats_url(), "operator", None)
            .await
            .expect("nats"),
    );
    let letters = taskmesh_events::dead_letters::list(&js, 100)
        .await
        .expect("dead letters");
    assert!(letters.is_empty(), "dead-lettered: {letters:?}");
    let executions = platform
        .logs()
        .into_iter()
        .find(|(path, _)| path.ends_with("execution.log"))
        .expect("execution log")
        .1;
    assert!(
        executions.contains("dependency unavailable; retrying in place"),
        "the intake consumer met the outage"
    );
    platform.stop();
    platform.clean_up();
}

/// Waits (up to 60 s) until `task` shows a succeeded job.
async fn converge(rest: &Rest, task: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, fetched) = rest.get(&format!("/v1/{task}")).await;
        if fetched["jobStatus"]["state"] == "JOB_STATE_SUCCEEDED" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{task} never converged: {}",
            fetched.get("jobStatus").unwrap_or(&Value::Null)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
