//! The broker's permissions, as the local stack provisions them (`deploy/local/nats-auth.sh`):
//! each service logs in as its own NATS user and may publish only its own events, read only its
//! own durable consumers and receive only on its own inbox prefix; nobody gets in without a login.
//! The rest of the end-to-end suite shows the same permissions are enough for every flow.

use std::time::Duration;

use async_nats::jetstream;
use taskmesh_testing::Stack;
use tokio::sync::mpsc;

use crate::harness::{Platform, Rest};

/// A client logged in as `user`, with the inbox prefix services use, and the server errors it is
/// told about (permission violations among them).
async fn log_in(
    platform: &Platform,
    user: &str,
) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let (errors, told) = mpsc::unbounded_channel();
    let (url, login) = taskmesh_events::nats::split_login(&platform.nats().url_as(user));
    let client = taskmesh_events::nats::options(user, login.as_ref())
        .event_callback(move |event| {
            let errors = errors.clone();
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    let _ = errors.send(error.to_string());
                }
            }
        })
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("log in as {user}: {e}"));
    (client, told)
}

/// Waits for a permission violation naming `subject`.
async fn violation(told: &mut mpsc::UnboundedReceiver<String>, subject: &str) -> String {
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(error) = told.recv().await {
            if error.to_lowercase().contains("permissions violation") && error.contains(subject) {
                return error;
            }
        }
        panic!("the client closed before the broker refused {subject}");
    })
    .await
    .unwrap_or_else(|_| panic!("the broker never refused {subject}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_may_publish_only_its_own_events_and_read_only_its_own_consumers() {
    let stack = Stack::load();
    let mut platform = Platform::start(&stack).await;
    let operator = jetstream::new(
        taskmesh_events::nats::connect_once(&platform.nats_url(), "operator", None)
            .await
            .expect("the operator logs in"),
    );

    // Without a login, nobody gets in.
    let anonymous = async_nats::ConnectOptions::new()
        .connect(platform.nats().url())
        .await;
    assert!(anonymous.is_err(), "an anonymous client was let in");
    let wrong = async_nats::ConnectOptions::new()
        .user_and_password("tasks".into(), "not its password".into())
        .connect(platform.nats().url())
        .await;
    assert!(wrong.is_err(), "a wrong password was let in");

    // The tasks service publishes its own events...
    let (tasks, mut told) = log_in(&platform, "tasks").await;
    let as_tasks = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(tasks.clone());
    as_tasks
        .publish("taskmesh.tasks.v1.broker_probe", "{}".into())
        .await
        .expect("publish")
        .await
        .expect("its own subject is acknowledged");

    // ...but an event forged on the projects' subject is refused by the broker and never stored.
    let forged = "taskmesh.projects.v1.project_deleted";
    let refused = as_tasks.publish(forged, "{}".into()).await;
    let refused = match refused {
        Ok(ack) => ack.await.map(|_| ()),
        Err(err) => Err(err),
    };
    assert!(refused.is_err(), "the forged event was acknowledged");
    let said = violation(&mut told, forged).await;
    println!("the broker said: {said}");
    let mut projects_stream = operator.get_stream("PROJECTS").await.expect("PROJECTS");
    assert!(
        projects_stream
            .get_last_raw_message_by_subject(forged)
            .await
            .is_err(),
        "the forged event is in PROJECTS"
    );
    // The services' own events flow: a sign-up runs the registration saga across identity and
    // projects, each publishing and consuming as its own user.
    let mut rest = Rest::new(&platform.base);
    let session = rest.register("broker", "correct horse battery").await;
    assert_eq!(
        session["user"]["personalOrganization"],
        "organizations/broker"
    );
    let stored = projects_stream.info().await.expect("info").state.messages;
    assert!(stored > 0, "the projects service published nothing");

    // It cannot read another service's consumer on a stream it reads too, nor a stream it does
    // not read, nor another service's replies.
    let stolen = "$JS.API.CONSUMER.MSG.NEXT.TASKS.execution-jobs";
    tasks
        .publish(stolen, "{\"batch\":1}".into())
        .await
        .expect("sent");
    violation(&mut told, stolen).await;
    assert!(
        as_tasks.get_stream("IDENTITY").await.is_err(),
        "tasks read the IDENTITY stream"
    );
    violation(&mut told, "$JS.API.STREAM.INFO.IDENTITY").await;
    let _eavesdrop = tasks
        .subscribe("_INBOX_execution.>")
        .await
        .expect("subscribe sent");
    violation(&mut told, "_INBOX_execution.>").await;

    // The execution service may not publish the tasks' events it consumes either.
    let (execution, mut told) = log_in(&platform, "execution").await;
    let task_event = "taskmesh.tasks.v1.task_created";
    execution
        .publish(task_event, "{}".into())
        .await
        .expect("sent");
    execution.flush().await.expect("flush");
    violation(&mut told, task_event).await;

    platform.stop();
    platform.clean_up();
}
