//! Jobs run, retry with backoff, fail for good, time out, get cancelled, and run once a version.

use std::time::Duration;

use taskmesh_contracts::execution_v1::{
    CancelExecutionRequest, ExecutionState, RetryExecutionRequest, execution_result,
};
use taskmesh_contracts::tasks_v1::{HttpRequest, Job, RetryBackoff, WebCrawl, job::Kind};

use crate::helpers::{World, is_final};

fn crawl(world: &World, path: &str, query: &str) -> Job {
    Job {
        kind: Some(Kind::WebCrawl(WebCrawl {
            url: world.url(path),
            query: query.into(),
        })),
        ..Default::default()
    }
}

pub(crate) fn get(world: &World, path: &str, attempts: i32, timeout_ms: i64) -> Job {
    Job {
        kind: Some(Kind::HttpRequest(HttpRequest {
            url: world.url(path),
            expected_status: 200,
            ..Default::default()
        })),
        max_attempts: attempts,
        timeout: Some(prost_types::Duration {
            seconds: timeout_ms / 1000,
            nanos: i32::try_from((timeout_ms % 1000) * 1_000_000).unwrap_or(0),
        }),
        backoff: Some(RetryBackoff {
            initial: Some(prost_types::Duration {
                seconds: 0,
                nanos: 300_000_000,
            }),
            multiplier: 2.0,
            max: Some(prost_types::Duration {
                seconds: 5,
                nanos: 0,
            }),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_crawl_finds_the_query_with_its_context() {
    let world = World::new().await;
    let task = world.create_task_with(crawl(&world, "/page", "rust")).await;
    let done = world.execution_until(&task, is_final).await;
    assert_eq!(done.state(), ExecutionState::Succeeded, "{done:?}");
    assert_eq!(done.attempts.len(), 1);
    let result_of = done.clone();
    assert_eq!(done.progress_percent, 100);
    let Some(execution_result::Kind::WebCrawl(result)) = result_of.result.and_then(|r| r.kind)
    else {
        panic!("a web crawl result");
    };
    assert_eq!(result.match_count, 2);
    assert!(result.matches[1].context.contains("Learn rust today"));

    // The completion event carries the correlation id of the task event that asked for the work.
    let mut headers = None;
    for _ in 0..50 {
        headers = crate::helpers::terminal_event_headers(&world.nats, &done.name).await;
        if headers.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let correlation = headers
        .expect("ExecutionCompleted on the stream")
        .get("Taskmesh-Correlation-Id")
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default();
    assert!(correlation.starts_with("corr-"), "{correlation}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_failures_then_success_with_growing_backoff() {
    let world = World::new().await;
    let task = world
        .create_task_with(get(&world, "/flaky/a", 3, 5000))
        .await;
    let done = world.execution_until(&task, is_final).await;
    assert_eq!(done.state(), ExecutionState::Succeeded, "{done:?}");
    assert_eq!(done.attempts.len(), 3);
    assert!(
        done.attempts[0].error.contains("unexpected status 500"),
        "{:?}",
        done.attempts
    );
    let calls = world.calls.of("/flaky/a");
    assert_eq!(calls.len(), 3);
    let (first, second) = (calls[1] - calls[0], calls[2] - calls[1]);
    // 300 ms then 600 ms, each ±20 %.
    assert!(first >= Duration::from_millis(230), "{first:?}");
    assert!(second >= Duration::from_millis(470), "{second:?}");
    assert!(second > first, "{first:?} then {second:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_ends_failed_after_the_last_attempt_and_can_be_retried() {
    let world = World::new().await;
    let task = world
        .create_task_with(get(&world, "/broken", 2, 5000))
        .await;
    let failed = world.execution_until(&task, is_final).await;
    assert_eq!(failed.state(), ExecutionState::Failed, "{failed:?}");
    assert_eq!(failed.attempts.len(), 2);
    assert!(failed.error.contains("unexpected status 500"));
    assert_eq!(world.calls.of("/broken").len(), 2);

    let retried = world
        .client()
        .retry_execution(RetryExecutionRequest {
            name: failed.name.clone(),
        })
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retried.state(), ExecutionState::Pending);
    let again = world
        .execution_until(&task, |e| is_final(e) && e.attempts.len() == 4)
        .await;
    assert_eq!(
        again.state(),
        ExecutionState::Failed,
        "a fresh round of two attempts"
    );
    let refused = world
        .client()
        .cancel_execution(CancelExecutionRequest { name: again.name })
        .await
        .expect_err("final");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_longer_than_its_timeout_fails() {
    let world = World::new().await;
    let task = world.create_task_with(get(&world, "/slow", 1, 300)).await;
    let done = world.execution_until(&task, is_final).await;
    assert_eq!(done.state(), ExecutionState::Failed, "{done:?}");
    assert!(done.error.contains("took longer than"), "{}", done.error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_execution_can_be_cancelled() {
    let world = World::new().await;
    let task = world
        .create_task_with(get(&world, "/slow", 3, 30_000))
        .await;
    let running = world
        .execution_until(&task, |e| e.state() == ExecutionState::Running)
        .await;
    let started = std::time::Instant::now();
    world
        .client()
        .cancel_execution(CancelExecutionRequest {
            name: running.name.clone(),
        })
        .await
        .expect("cancel");
    let done = world.execution_until(&task, is_final).await;
    assert_eq!(done.state(), ExecutionState::Cancelled, "{done:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped at the next heartbeat"
    );
    assert_eq!(done.attempts.len(), 1, "not retried after a cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_task_version_runs_once_even_when_its_event_is_redelivered() {
    let world = World::new().await;
    let task = format!("{}/tasks/{}", world.project, uuid::Uuid::now_v7().simple());
    let job = crawl(&world, "/page", "rust");
    world
        .publish_created(&task, 1, job.clone(), "event-a")
        .await;
    world.publish_created(&task, 1, job, "event-b").await;
    world.execution_until(&task, is_final).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let listed = world
        .client()
        .list_executions(taskmesh_contracts::execution_v1::ListExecutionsRequest {
            parent: task,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.executions.len(), 1);
    assert_eq!(world.calls.of("/page").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_fails_for_good_is_dead_lettered_and_a_replay_runs_it_again_once() {
    use taskmesh_events::dead_letters;
    let world = World::new().await;
    let task = world
        .create_task_with(get(&world, "/flaky/d", 2, 5000))
        .await;
    let failed = world.execution_until(&task, is_final).await;
    assert_eq!(failed.state(), ExecutionState::Failed, "{failed:?}");

    let letters = world.dead_letters().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter.consumer, "execution-jobs");
    assert_eq!(letter.subject, "taskmesh.tasks.v1.task_created");
    assert_eq!(letter.event_type, "taskmesh.tasks.v1.TaskCreated");
    assert!(
        letter.reason.contains("unexpected status 500"),
        "{}",
        letter.reason
    );

    let js = async_nats::jetstream::new(async_nats::connect(world.nats.url()).await.expect("nats"));
    dead_letters::replay(&js, letter.sequence)
        .await
        .expect("replay");
    let done = world
        .execution_until(&task, |e| e.state() == ExecutionState::Succeeded)
        .await;
    assert_eq!(done.attempts.len(), 3);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        world.calls.of("/flaky/d").len(),
        3,
        "the replay ran the job once more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_of_the_project_see_or_change_executions() {
    let world = World::new().await;
    let task = world.create_task_with(crawl(&world, "/page", "rust")).await;
    let done = world.execution_until(&task, is_final).await;
    let err = world
        .stranger()
        .get_execution(taskmesh_contracts::execution_v1::GetExecutionRequest {
            name: done.name.clone(),
        })
        .await
        .expect_err("not a member");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let err = world
        .stranger()
        .retry_execution(RetryExecutionRequest { name: done.name })
        .await
        .expect_err("not a member");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
}

/// A job cannot reach inside: the cloud metadata service, a private address, the IPv6 loopback
/// and a URL naming the loopback by a decimal number all fail on their first attempt, without
/// retries and without a response stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_aimed_inside_the_platform_are_refused_without_retries() {
    let world = World::new().await;
    for url in [
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://[::1]/".to_owned(),
        "http://2130706434/".to_owned(),
    ] {
        let task = world
            .create_task_with(Job {
                kind: Some(Kind::HttpRequest(HttpRequest {
                    url: url.clone(),
                    ..Default::default()
                })),
                max_attempts: 3,
                ..Default::default()
            })
            .await;
        let failed = world.execution_until(&task, is_final).await;
        assert_eq!(failed.state(), ExecutionState::Failed, "{url}: {failed:?}");
        assert_eq!(failed.attempts.len(), 1, "{url}: not retried");
        assert!(
            failed.error.contains("destination refused"),
            "{url}: {}",
            failed.error
        );
        assert!(failed.result.is_none(), "{url}");
    }
}

/// One project's slow jobs take at most half of the workers (4 here, so 2): the rest of its jobs
/// wait, and another project's job runs at once on a free worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_project_cannot_take_every_worker() {
    let world = World::new().await;
    let slow = || Job {
        kind: Some(Kind::HttpRequest(HttpRequest {
            url: world.url("/slow"),
            ..Default::default()
        })),
        max_attempts: 1,
        ..Default::default()
    };
    for _ in 0..4 {
        world.create_task_with(slow()).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while world.calls.of("/slow").len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        world.calls.of("/slow").len(),
        2,
        "two of the project's jobs run"
    );

    let other = format!(
        "projects/other-project/tasks/{}",
        uuid::Uuid::now_v7().simple()
    );
    world
        .publish_created(
            &other,
            1,
            crawl(&world, "/page", "rust"),
            &uuid::Uuid::now_v7().to_string(),
        )
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while world.calls.of("/page").is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        world.calls.of("/page").len(),
        1,
        "another project's job is not kept waiting"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        world.calls.of("/slow").len(),
        2,
        "the first project's other jobs still wait"
    );
}

/// A worker that cannot renew its lease (its database is away) abandons the attempt before the
/// lease can run out, so the attempt that runs after the lease expired never runs beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_whose_lease_cannot_be_renewed_is_abandoned_before_another_starts() {
    let stack = taskmesh_testing::Stack::load();
    let proxy = taskmesh_testing::TcpProxy::start(stack.pg_port).await;
    let world = World::with(|l| l.set("database.port", proxy.port())).await;
    let task = world
        .create_task_with(get(&world, "/held", 3, 30_000))
        .await;
    for _ in 0..200 {
        if !world.calls.of("/held").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(world.calls.of("/held").len(), 1, "the first attempt runs");

    // The database goes away for longer than the lease (1.5 s).
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        world.calls.of("/held:end").len(),
        1,
        "the attempt was abandoned while its lease could not be renewed (the job answers after 6 s)"
    );
    proxy.restore();

    let done = world.execution_until(&task, is_final).await;
    assert_eq!(done.state(), ExecutionState::Succeeded, "{done:?}");
    let starts = world.calls.of("/held");
    let ends = world.calls.of("/held:end");
    assert_eq!(starts.len(), 2, "run again once the lease expired");
    assert!(
        starts[1] >= ends[0],
        "the second attempt started after the first was abandoned"
    );
}

/// A job that breaks the contract's rules (here: a loopback `file:` URL and a 100-year backoff),
/// published on the tasks subject by someone other than the tasks service, is checked again at
/// intake: nothing runs, and the event is dead-lettered naming the broken rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_checks_a_job_against_its_contract_again() {
    let world = World::new().await;
    let mut job = get(&world, "/page", 1, 5000);
    if let Some(Kind::HttpRequest(request)) = job.kind.as_mut() {
        request.url = "file:///etc/passwd".into();
    }
    if let Some(backoff) = job.backoff.as_mut() {
        backoff.max = Some(prost_types::Duration {
            seconds: 100 * 365 * 24 * 3600,
            nanos: 0,
        });
    }
    let task = world.create_task_with(job).await;

    let letters = world.dead_letters().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let reason = &letters[0].reason;
    assert!(reason.contains("breaks its contract"), "{reason}");
    assert!(reason.contains("job.http_request.url"), "{reason}");
    assert!(reason.contains("job.backoff.max"), "{reason}");
    let listed = world
        .client()
        .list_executions(taskmesh_contracts::execution_v1::ListExecutionsRequest {
            parent: task,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.executions.is_empty(), "nothing runs: {listed:?}");
    assert!(world.calls.of("/page").is_empty());
}
