//! Durable consumers against a real (private) NATS server: retries with growing delays, dead
//! letters that do not hold up later messages, replay, and the inbox against real PostgreSQL.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, Message, message::PublishMessage};
use taskmesh_events::consumer::{self, Backoff, ConsumerSpec, HandleError, Handler};
use taskmesh_events::{StreamSpec, dead_letters, inbox};
use taskmesh_testing::{NatsServer, Stack, TestDatabase};
use tokio::sync::watch;

/// Fails while the payload is `poison` (unless cured), or the first `fail_first` attempts.
#[derive(Default)]
struct Recorder {
    attempts: Mutex<Vec<(String, Instant)>>,
    handled: Mutex<Vec<String>>,
    seen_ids: Mutex<HashSet<String>>,
    fail_first: usize,
    /// Attempts that fail as if the database were down, before the first real one.
    unavailable_first: usize,
    cured: Mutex<bool>,
}

impl Handler for Recorder {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>> {
        Box::pin(async move {
            let body = String::from_utf8_lossy(&message.payload).into_owned();
            let attempt = {
                let mut attempts = self.attempts.lock().expect("lock");
                attempts.push((body.clone(), Instant::now()));
                attempts.iter().filter(|(b, _)| *b == body).count()
            };
            if attempt <= self.unavailable_first {
                let down = sqlx::Error::PoolTimedOut;
                return Err(HandleError::from(down));
            }
            let cured = *self.cured.lock().expect("lock");
            if (body == "poison" && !cured) || attempt <= self.fail_first {
                return Err(HandleError::Retry(format!("cannot handle {body}")));
            }
            // Idempotent by event id, as a real handler with an inbox would be.
            let id = inbox::event_id(message).unwrap_or_default();
            if self.seen_ids.lock().expect("lock").insert(id) {
                self.handled.lock().expect("lock").push(body);
            }
            Ok(())
        })
    }
}

async fn publish(js: &jetstream::Context, subject: &str, body: &str, id: &str) {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", id);
    headers.insert("Taskmesh-Event-Type", "test.v1.Thing");
    js.send_publish(
        subject.to_owned(),
        PublishMessage::build()
            .payload(body.as_bytes().to_vec().into())
            .headers(headers),
    )
    .await
    .expect("publish")
    .await
    .expect("ack");
}

fn spec(max_deliveries: i64) -> ConsumerSpec {
    ConsumerSpec {
        max_deliveries,
        backoff: Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(2),
            multiplier: 2.0,
            jitter: 0.0,
        },
        ..ConsumerSpec::new(
            StreamSpec::for_context("ctest", 1, Duration::from_secs(60)),
            "ctest-consumer",
            "taskmesh.ctest.v1.>",
        )
    }
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_with_exponentially_growing_delays() {
    let stack = Stack::load();
    let nats = NatsServer::start(&stack).await;
    let client = async_nats::connect(nats.url()).await.expect("nats");
    let recorder = Arc::new(Recorder {
        fail_first: 2,
        ..Recorder::default()
    });
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(consumer::run(
        client.clone(),
        spec(5),
        Arc::clone(&recorder),
        stopped,
    ));
    let js = jetstream::new(client);
    tokio::time::sleep(Duration::from_millis(300)).await;
    publish(&js, "taskmesh.ctest.v1.thing", "flaky", "id-1").await;

    until("the third attempt to succeed", || {
        recorder.handled.lock().expect("lock").len() == 1
    })
    .await;
    let attempts: Vec<Instant> = recorder
        .attempts
        .lock()
        .expect("lock")
        .iter()
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(attempts.len(), 3, "two failures, then success");
    let first_gap = attempts[1] - attempts[0];
    let second_gap = attempts[2] - attempts[1];
    assert!(first_gap >= Duration::from_millis(180), "{first_gap:?}");
    assert!(second_gap >= Duration::from_millis(380), "{second_gap:?}");
    assert!(
        second_gap > first_gap,
        "the delay grows: {first_gap:?} then {second_gap:?}"
    );
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_is_dead_lettered_without_holding_up_the_rest_and_replays_once()
 {
    let stack = Stack::load();
    let nats = NatsServer::start(&stack).await;
    let client = async_nats::connect(nats.url()).await.expect("nats");
    let recorder = Arc::new(Recorder::default());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(consumer::run(
        client.clone(),
        spec(3),
        Arc::clone(&recorder),
        stopped,
    ));
    let js = jetstream::new(client);
    tokio::time::sleep(Duration::from_millis(300)).await;

    publish(&js, "taskmesh.ctest.v1.thing", "poison", "id-poison").await;
    for i in 0..5 {
        publish(
            &js,
            "taskmesh.ctest.v1.thing",
            &format!("good-{i}"),
            &format!("id-{i}"),
        )
        .await;
    }
    until("the good messages", || {
        recorder.handled.lock().expect("lock").len() == 5
    })
    .await;
    until("the dead letter", || {
        recorder
            .attempts
            .lock()
            .expect("lock")
            .iter()
            .filter(|(b, _)| b == "poison")
            .count()
            == 3
    })
    .await;

    let mut letters = Vec::new();
    for _ in 0..50 {
        letters = dead_letters::list(&js, 10).await.expect("list");
        if !letters.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter.consumer, "ctest-consumer");
    assert_eq!(letter.subject, "taskmesh.ctest.v1.thing");
    assert_eq!(letter.deliveries, "3");
    assert_eq!(letter.event_id, "id-poison");
    assert_eq!(
        letter.event_type, "test.v1.Thing",
        "original headers are kept"
    );
    assert!(
        letter.reason.contains("cannot handle poison"),
        "{}",
        letter.reason
    );

    *recorder.cured.lock().expect("lock") = true;
    dead_letters::replay(&js, letter.sequence)
        .await
        .expect("replay");
    until("the replayed message", || {
        recorder
            .handled
            .lock()
            .expect("lock")
            .contains(&"poison".to_owned())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let handled = recorder.handled.lock().expect("lock").clone();
    assert_eq!(
        handled.iter().filter(|b| *b == "poison").count(),
        1,
        "handled once"
    );
    assert!(
        dead_letters::list(&js, 10).await.expect("list").is_empty(),
        "replayed letters leave"
    );
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_waited_out_in_place_and_dead_letters_nothing() {
    let stack = Stack::load();
    let nats = NatsServer::start(&stack).await;
    let client = async_nats::connect(nats.url()).await.expect("nats");
    // Twice as many failed attempts as the consumer allows before dead-lettering.
    let recorder = Arc::new(Recorder {
        unavailable_first: 6,
        ..Recorder::default()
    });
    let (stop, stopped) = watch::channel(false);
    let spec = ConsumerSpec {
        transient_max: Duration::from_millis(300),
        ..spec(3)
    };
    tokio::spawn(consumer::run(
        client.clone(),
        spec,
        Arc::clone(&recorder),
        stopped,
    ));
    let js = jetstream::new(client);
    tokio::time::sleep(Duration::from_millis(300)).await;
    publish(&js, "taskmesh.ctest.v1.thing", "during-outage", "id-o1").await;
    publish(&js, "taskmesh.ctest.v1.thing", "behind-it", "id-o2").await;

    until("both messages once the outage ends", || {
        recorder.handled.lock().expect("lock").len() == 2
    })
    .await;
    let attempts: Vec<(String, Instant)> = recorder.attempts.lock().expect("lock").clone();
    let on_first = attempts
        .iter()
        .filter(|(b, _)| b == "during-outage")
        .count();
    assert_eq!(on_first, 7, "six failed attempts in place, then success");
    let gaps: Vec<Duration> = attempts
        .windows(2)
        .map(|w| w[1].1 - w[0].1)
        .take(6)
        .collect();
    assert!(
        gaps.iter().all(|gap| *gap <= Duration::from_millis(700)),
        "the delay is capped by transient_max: {gaps:?}"
    );
    assert_eq!(
        recorder.handled.lock().expect("lock").clone(),
        vec!["during-outage".to_owned(), "behind-it".to_owned()],
        "order is kept: nothing else was pulled during the outage"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        dead_letters::list(&js, 10).await.expect("list").is_empty(),
        "an outage is not the message's fault"
    );
    let _ = stop.send(true);
}

#[test]
fn database_failures_are_told_apart_from_failures_of_the_message() {
    use taskmesh_events::consumer::is_transient;
    assert!(is_transient(&sqlx::Error::PoolTimedOut));
    assert!(is_transient(&sqlx::Error::Io(std::io::Error::from(
        std::io::ErrorKind::ConnectionRefused
    ))));
    assert!(!is_transient(&sqlx::Error::RowNotFound));
    assert!(!is_transient(&sqlx::Error::ColumnNotFound("x".into())));
    #[derive(Debug, thiserror::Error)]
    #[error("store failed")]
    struct Wrapped(#[source] sqlx::Error);
    assert!(matches!(
        HandleError::classify(&Wrapped(sqlx::Error::PoolClosed)),
        HandleError::Transient(text) if text.contains("store failed")
    ));
    assert!(matches!(
        HandleError::classify(&Wrapped(sqlx::Error::RowNotFound)),
        HandleError::Retry(_)
    ));
}

#[tokio::test]
async fn the_inbox_lets_an_event_take_effect_once_per_consumer() {
    let stack = Stack::load();
    let db = TestDatabase::create(&stack, "events_test").await;
    let pool = db.pool(&stack).await;
    let migrations = [&taskmesh_events::MIGRATOR];
    taskmesh_mesh::db::migrate(&pool, &migrations)
        .await
        .expect("schema");
    taskmesh_mesh::db::migrate(&pool, &migrations)
        .await
        .expect("idempotent");
    let mut conn = pool.acquire().await.expect("conn");
    assert!(inbox::claim(&mut conn, "a", "e1").await.expect("claim"));
    assert!(!inbox::claim(&mut conn, "a", "e1").await.expect("again"));
    assert!(
        inbox::claim(&mut conn, "b", "e1")
            .await
            .expect("other consumer")
    );
    // A batch claims in one statement: only what was not handled before, each id once.
    let ids = ["e3", "e1", "e2", "e3"].map(String::from);
    let fresh = inbox::claim_all(&mut conn, "a", &ids)
        .await
        .expect("claim all");
    let mut fresh: Vec<String> = fresh.into_iter().collect();
    fresh.sort();
    assert_eq!(fresh, ["e2", "e3"]);
    let again = inbox::claim_all(&mut conn, "a", &ids).await.expect("again");
    assert!(again.is_empty(), "claimed twice: {again:?}");
    assert!(!inbox::claim(&mut conn, "a", "e2").await.expect("single"));
}

/// Takes batches: a batch holding `poison` is refused whole (and its messages come one by one).
#[derive(Default)]
struct Batcher {
    single: Recorder,
    batches: Mutex<Vec<Vec<String>>>,
}

impl Handler for Batcher {
    fn handle<'a>(
        &'a self,
        message: &'a Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandleError>> + Send + 'a>> {
        self.single.handle(message)
    }

    fn handle_batch<'a>(&'a self, messages: &'a [Message]) -> Option<consumer::Handling<'a>> {
        Some(Box::pin(async move {
            let bodies: Vec<String> = messages
                .iter()
                .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
                .collect();
            if bodies.iter().any(|b| b == "poison") {
                return Err(HandleError::Retry("a poisoned batch".to_owned()));
            }
            self.batches.lock().expect("lock").push(bodies.clone());
            self.single.handled.lock().expect("lock").extend(bodies);
            Ok(())
        }))
    }
}

/// Messages that are there together go to a batching handler together, in order, each exactly
/// once; a batch the handler refuses is handled one message at a time, so only the bad one is
/// dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_waiting_together_are_handled_as_a_batch_and_a_refused_batch_one_by_one() {
    let stack = Stack::load();
    let nats = NatsServer::start(&stack).await;
    let client = async_nats::connect(nats.url()).await.expect("nats");
    let js = jetstream::new(client.clone());
    spec(2).stream.ensure(&js).await.expect("stream");
    for n in 0..60 {
        let body = if n == 30 {
            "poison".to_owned()
        } else {
            format!("m{n}")
        };
        publish(&js, "taskmesh.ctest.v1.thing", &body, &format!("id-{n}")).await;
    }
    let batcher = Arc::new(Batcher::default());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(consumer::run(
        client.clone(),
        spec(2),
        Arc::clone(&batcher),
        stopped,
    ));
    until("every good message handled", || {
        batcher.single.handled.lock().expect("lock").len() == 59
    })
    .await;
    let handled = batcher.single.handled.lock().expect("lock").clone();
    let expected: Vec<String> = (0..60)
        .filter(|n| *n != 30)
        .map(|n| format!("m{n}"))
        .collect();
    assert_eq!(handled, expected, "each once, in order");
    let batches = batcher.batches.lock().expect("lock").clone();
    assert!(
        batches.iter().any(|b| b.len() > 1),
        "no batch of more than one: {batches:?}"
    );
    let letters = {
        let mut letters = Vec::new();
        for _ in 0..100 {
            letters = dead_letters::list(&js, 10).await.expect("dead letters");
            if !letters.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        letters
    };
    assert_eq!(letters.len(), 1, "{letters:?}");
    let _ = stop.send(true);
}
