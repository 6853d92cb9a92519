//! Events: every committed change reaches the `PROJECTS` stream exactly once, with `Nats-Msg-Id` and
//! the taskmesh headers, also when NATS was down at commit time.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use prost::Message;
use taskmesh_contracts::projects_v1::{CreateProjectRequest, Project, ProjectCreated};

use taskmesh_testing::NatsServer;

use crate::helpers::{Stack, TestApp, spawn_app, spawn_app_with};

/// Messages on `subject` about `resource` since `since`, read with an ephemeral consumer.
async fn events_about(
    nats_url: &str,
    subject: &str,
    resource: &str,
    since: time::OffsetDateTime,
) -> Vec<jetstream::Message> {
    let client = taskmesh_events::nats::connect_once(nats_url, "tests", None)
        .await
        .expect("nats");
    let js = jetstream::new(client);
    let Ok(stream) = js.get_stream("PROJECTS").await else {
        return Vec::new();
    };
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: subject.to_owned(),
            deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time: since },
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut found = Vec::new();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(500)
            .expires(Duration::from_millis(300))
            .messages()
            .await
            .expect("fetch");
        let mut got = 0;
        while let Some(message) = batch.next().await {
            let message = message.expect("message");
            got += 1;
            let about = message
                .headers
                .as_ref()
                .and_then(|h| h.get("Taskmesh-Subject"))
                .map(|v| v.as_str() == resource)
                .unwrap_or(false);
            if about {
                found.push(message);
            }
        }
        if got == 0 {
            return found;
        }
    }
}

/// Waits until at least one event about `resource` arrived, then lets stragglers arrive and
/// returns all of them.
async fn wait_for_events(
    nats_url: &str,
    subject: &str,
    resource: &str,
    since: time::OffsetDateTime,
) -> Vec<jetstream::Message> {
    for _ in 0..120 {
        if !events_about(nats_url, subject, resource, since)
            .await
            .is_empty()
        {
            tokio::time::sleep(Duration::from_secs(1)).await;
            return events_about(nats_url, subject, resource, since).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Vec::new()
}

async fn create_project(app: &TestApp, name: &str) -> Project {
    app.projects()
        .create_project(CreateProjectRequest {
            project: Some(Project {
                display_name: name.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner()
}

fn header(message: &jetstream::Message, name: &str) -> String {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn create_project_puts_exactly_one_event_on_the_stream() {
    let app = spawn_app().await;
    let since = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let project = create_project(&app, "Evented").await;
    let events = wait_for_events(
        &app.stack.nats_url,
        "taskmesh.projects.v1.project_created",
        &project.name,
        since,
    )
    .await;
    assert_eq!(events.len(), 1, "exactly one ProjectCreated");
    let event = &events[0];
    assert!(uuid::Uuid::parse_str(&header(event, "Nats-Msg-Id")).is_ok());
    assert_eq!(
        header(event, "Taskmesh-Event-Type"),
        "taskmesh.projects.v1.ProjectCreated"
    );
    assert_eq!(header(event, "Taskmesh-Source"), "projects");
    assert!(!header(event, "Taskmesh-Time").is_empty());
    assert!(!header(event, "Taskmesh-Correlation-Id").is_empty());
    assert!(header(event, "traceparent").starts_with("00-"));
    let decoded = ProjectCreated::decode(event.payload.clone()).expect("payload");
    assert_eq!(decoded.project, Some(project));
}

async fn pending_rows(app: &TestApp) -> i64 {
    let mut conn = app.db.connect(&app.stack).await;
    sqlx::query_scalar("SELECT count(*) FROM mesh_outbox WHERE published_at IS NULL")
        .fetch_one(&mut conn)
        .await
        .expect("count")
}

#[tokio::test]
async fn an_event_committed_while_nats_is_down_is_published_once_when_it_returns() {
    let stack = Stack::load();
    let mut nats = NatsServer::start(&stack).await;
    let url = nats.url();
    let app = spawn_app_with(|l| l.set("nats.url", url.clone())).await;
    let since = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);

    // Let the relay create the stream, then take NATS away.
    create_project(&app, "Before").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.stop();

    let project = create_project(&app, "While down").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        pending_rows(&app).await >= 1,
        "the event waits in the outbox"
    );

    nats.resume().await;
    let events = wait_for_events(
        &url,
        "taskmesh.projects.v1.project_created",
        &project.name,
        since,
    )
    .await;
    assert_eq!(
        events.len(),
        1,
        "published exactly once after NATS returned"
    );
    for _ in 0..40 {
        if pending_rows(&app).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        pending_rows(&app).await,
        0,
        "every outbox row is marked sent"
    );
}
