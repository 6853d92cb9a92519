//! Delivery by email and to webhooks: once per notification and channel, recognisable on a
//! resend, signed, retried, turned off after repeated failures, and never inside the platform.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{TimeDelta, Utc};
use hmac::{Hmac, Mac};
use prost_types::FieldMask;
use sha2::Sha256;
use taskmesh_contracts::notifications_v1::{
    Channel, ChannelSetting, CreateWebhookRequest, DeleteWebhookRequest, GetWebhookRequest,
    ListWebhookDeliveriesRequest, NotificationKind, NotificationSettings, QuietHours,
    RedeliverWebhookDeliveryRequest, RotateWebhookSecretRequest, UpdateNotificationSettingsRequest,
    UpdateWebhookRequest, Webhook, webhook_delivery,
};
use taskmesh_contracts::projects_v1::Role;
use tonic::Code;

use crate::helpers::{OWNER, PATIENCE, Receiver, World};

/// Checks a request's signature the way the Standard Webhooks specification tells receivers to.
fn verify(secret: &str, headers: &std::collections::HashMap<String, String>, body: &str) -> bool {
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("a base64 secret");
    let signed = format!(
        "{}.{}.{}",
        headers["webhook-id"], headers["webhook-timestamp"], body
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("a key");
    mac.update(signed.as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    headers["webhook-signature"]
        .split(' ')
        .any(|candidate| candidate == expected)
}

#[tokio::test]
async fn an_email_reaches_the_smtp_server_once_with_a_stable_message_id() {
    let world = World::new().await;
    world.register("bob", "bob@example.test").await;
    world.add_member("bob", Role::Member).await;
    let task = world.create_task(OWNER, "Review contract", "bob").await;
    let inbox = world.wait_inbox("bob", 2).await;
    let assigned = inbox
        .iter()
        .find(|n| n.kind() == NotificationKind::TaskAssigned)
        .expect("assigned");
    let id = assigned.name.rsplit('/').next().expect("an id");
    // Both are emailed by default (added to a project, assigned a task).
    let mails = world.smtp.wait_for(2, PATIENCE).await;
    let mail = mails
        .iter()
        .find(|m| m.text_header("Subject").contains("Review contract"))
        .expect("the assignment's email");
    assert_eq!(mail.header("To"), "bob@example.test");
    assert_eq!(
        mail.text_header("Subject"),
        format!("[taskmesh] {}", assigned.title)
    );
    assert_eq!(
        mail.header("Message-ID"),
        format!("<{id}@notifications.taskmesh>")
    );
    assert!(
        mail.header("List-Unsubscribe")
            .contains("/v1/users/bob/notificationSettings"),
        "{}",
        mail.raw
    );
    assert!(mail.raw.contains("text/html") && mail.raw.contains("text/plain"));
    // The link to the task, in the quoted-printable body (soft line breaks removed).
    let body = mail.raw.replace("=\r\n", "").replace("=\n", "");
    assert!(body.contains(&format!("/v1/{}", task.name)), "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(world.smtp.messages().len(), 2);
}

#[tokio::test]
async fn email_turned_off_sends_nothing_and_quiet_hours_hold_it_until_they_end() {
    let world = World::new().await;
    world.register("bob", "bob@example.test").await;
    world.add_member("bob", Role::Member).await;
    world.smtp.wait_for(1, PATIENCE).await;
    let mut bob = world.inbox_of("bob");
    bob.update_notification_settings(UpdateNotificationSettingsRequest {
        settings: Some(NotificationSettings {
            name: "users/bob/notificationSettings".into(),
            channels: vec![ChannelSetting {
                kind: NotificationKind::TaskAssigned as i32,
                channel: Channel::Email as i32,
                enabled: false,
            }],
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["channels".into()],
        }),
    })
    .await
    .expect("email off");
    world.create_task(OWNER, "No mail", "bob").await;
    world.wait_inbox("bob", 2).await;
    world.settle().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(world.smtp.messages().len(), 1, "nothing for an assignment");

    // Quiet from an hour ago until two minutes from now (UTC): a comment's email waits.
    let now = Utc::now();
    let fmt = |t: chrono::DateTime<Utc>| t.format("%H:%M").to_string();
    let end = now + TimeDelta::minutes(2);
    bob.update_notification_settings(UpdateNotificationSettingsRequest {
        settings: Some(NotificationSettings {
            name: "users/bob/notificationSettings".into(),
            quiet_hours: Some(QuietHours {
                start_time: fmt(now - TimeDelta::hours(1)),
                end_time: fmt(end),
            }),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["quiet_hours".into()],
        }),
    })
    .await
    .expect("quiet hours");
    let task = world.create_task("bob", "Bob's own", "").await;
    world
        .tasks(OWNER)
        .add_comment(taskmesh_contracts::tasks_v1::AddCommentRequest {
            parent: task.name.clone(),
            comment: Some(taskmesh_contracts::tasks_v1::Comment {
                text: "ping".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("comment");
    world.wait_inbox("bob", 3).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(world.smtp.messages().len(), 1, "held during quiet hours");
    let mut db = world.db.connect(&world.stack).await;
    let held: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT next_attempt_time FROM emails WHERE state = 1")
            .fetch_one(&mut db)
            .await
            .expect("the held email");
    let quiet_end = end
        .date_naive()
        .and_hms_opt(
            chrono::Timelike::hour(&end),
            chrono::Timelike::minute(&end),
            0,
        )
        .expect("a time")
        .and_utc();
    assert_eq!(held, quiet_end, "held until the quiet hours end");
    // Time passes (the row is moved to its end): it goes out.
    sqlx::query("UPDATE emails SET next_attempt_time = now() WHERE state = 1")
        .execute(&mut db)
        .await
        .expect("let time pass");
    let mails = world.smtp.wait_for(2, PATIENCE).await;
    assert!(
        mails
            .iter()
            .any(|m| m.text_header("Subject").contains("commented on"))
    );
}

async fn webhook(world: &World, url: &str, filter: &str) -> Webhook {
    world
        .webhooks(OWNER)
        .create_webhook(world.new_webhook(url, filter))
        .await
        .expect("create webhook")
        .into_inner()
}

#[tokio::test]
async fn a_webhook_is_signed_retried_with_the_same_id_and_logged() {
    let world = World::new().await;
    world.add_member("bob", Role::Member).await;
    world.wait_inbox("bob", 1).await;
    let receiver = Receiver::start(&[500, 500]).await;
    let hook = webhook(&world, &receiver.url, "kind = TASK_ASSIGNED").await;
    assert!(hook.secret.starts_with("whsec_"));
    world.create_task(OWNER, "Hooked", "bob").await;

    let received = receiver.wait_for(3).await;
    assert_eq!(received.len(), 3);
    let ids: Vec<&str> = received
        .iter()
        .map(|r| r.headers["webhook-id"].as_str())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    for request in &received {
        assert!(verify(&hook.secret, &request.headers, &request.body));
    }
    let payload: serde_json::Value = serde_json::from_str(&received[2].body).expect("json");
    assert_eq!(payload["type"], "task.assigned");
    assert_eq!(payload["data"]["recipient"], "users/bob");

    let mut hooks = world.webhooks(OWNER);
    let deliveries = loop {
        let deliveries = hooks
            .list_webhook_deliveries(ListWebhookDeliveriesRequest {
                parent: hook.name.clone(),
                ..Default::default()
            })
            .await
            .expect("deliveries")
            .into_inner()
            .deliveries;
        if deliveries.first().is_some_and(|d| d.attempts.len() == 3) {
            break deliveries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(deliveries.len(), 1, "the member's addition is filtered out");
    let delivery = &deliveries[0];
    assert_eq!(delivery.state(), webhook_delivery::State::Succeeded);
    assert_eq!(delivery.message_id, ids[0]);
    assert_eq!(
        delivery
            .attempts
            .iter()
            .map(|a| a.status_code)
            .collect::<Vec<_>>(),
        [500, 500, 200]
    );

    // Redelivered on request, with the same id; signed with the secret in force.
    let rotated = hooks
        .rotate_webhook_secret(RotateWebhookSecretRequest {
            name: hook.name.clone(),
        })
        .await
        .expect("rotate")
        .into_inner();
    assert_ne!(rotated.secret, hook.secret);
    hooks
        .redeliver_webhook_delivery(RedeliverWebhookDeliveryRequest {
            name: delivery.name.clone(),
        })
        .await
        .expect("redeliver");
    let again = receiver.wait_for(4).await;
    assert_eq!(again[3].headers["webhook-id"], ids[0]);
    assert!(verify(&rotated.secret, &again[3].headers, &again[3].body));
    assert!(!verify(&hook.secret, &again[3].headers, &again[3].body));
    // The secret is never shown again.
    let read = hooks
        .get_webhook(GetWebhookRequest {
            name: hook.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert!(read.secret.is_empty());
    // Members who are not admins cannot see it.
    let denied = world
        .webhooks("bob")
        .get_webhook(GetWebhookRequest { name: hook.name })
        .await
        .expect_err("a member");
    assert_eq!(denied.code(), Code::PermissionDenied);
}

fn fail_fast(layers: taskmesh_mesh::ConfigLayers) -> taskmesh_mesh::ConfigLayers {
    layers
        .set("webhooks.disable_after_failures", 3)
        .set("webhooks.max_attempts", 10)
}

#[tokio::test]
async fn a_webhook_failing_again_and_again_is_turned_off_and_its_creator_told() {
    let world = World::with(fail_fast).await;
    world.add_member("bob", Role::Member).await;
    world.wait_inbox("bob", 1).await;
    let receiver = Receiver::start(&[]).await;
    receiver.always(503, 1000);
    let hook = webhook(&world, &receiver.url, "").await;
    world.create_task(OWNER, "Doomed", "bob").await;
    let told = world.wait_inbox(OWNER, 1).await;
    assert_eq!(told[0].kind(), NotificationKind::WebhookDisabled);
    assert_eq!(told[0].resource, hook.name);
    let read = world
        .webhooks(OWNER)
        .get_webhook(GetWebhookRequest {
            name: hook.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert!(!read.active);
    assert_eq!(read.consecutive_failures, 3);
    assert!(read.disabled_reason.contains("3 failed deliveries"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        receiver.received().len(),
        3,
        "no attempt after it was turned off"
    );

    // Turned on again under its etag (a stale one is refused): it starts from no failures and
    // the next notification goes out.
    let mut hooks = world.webhooks(OWNER);
    let on = |etag: &str| UpdateWebhookRequest {
        webhook: Some(Webhook {
            name: hook.name.clone(),
            active: true,
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["active".into()],
        }),
    };
    let stale = hooks
        .update_webhook(on(&hook.etag))
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);
    let again = hooks
        .update_webhook(on(&read.etag))
        .await
        .expect("turned on")
        .into_inner();
    assert!(again.active);
    assert_eq!(again.consecutive_failures, 0);
    assert!(again.disabled_reason.is_empty());
    receiver.always(200, 0);
    world.create_task(OWNER, "Revived", "bob").await;
    let received = receiver.wait_for(4).await;
    let payload: serde_json::Value = serde_json::from_str(&received[3].body).expect("json");
    assert!(
        payload["data"]["title"]
            .as_str()
            .is_some_and(|t| t.contains("Revived")),
        "{payload}"
    );

    // Deleted under its etag: a stale one is refused, then it is gone with its deliveries.
    let delete = |etag: &str| DeleteWebhookRequest {
        name: hook.name.clone(),
        etag: etag.into(),
    };
    let stale = hooks
        .delete_webhook(delete(&read.etag))
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);
    hooks
        .delete_webhook(delete(&again.etag))
        .await
        .expect("deleted");
    let gone = hooks
        .get_webhook(GetWebhookRequest {
            name: hook.name.clone(),
        })
        .await
        .expect_err("gone");
    assert_eq!(gone.code(), Code::NotFound);
    let deliveries = hooks
        .list_webhook_deliveries(ListWebhookDeliveriesRequest {
            parent: hook.name.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(deliveries.expect_err("no webhook").code(), Code::NotFound);
}

fn two_per_project(layers: taskmesh_mesh::ConfigLayers) -> taskmesh_mesh::ConfigLayers {
    layers.set("webhooks.max_per_project", 2)
}

#[tokio::test]
async fn a_project_holds_as_many_webhooks_as_allowed() {
    let world = World::with(two_per_project).await;
    let receiver = Receiver::start(&[]).await;
    let first = webhook(&world, &receiver.url, "").await;
    webhook(&world, &receiver.url, "kind = TASK_ASSIGNED").await;
    let create = || world.new_webhook(&receiver.url, "");
    let mut hooks = world.webhooks(OWNER);
    let full = hooks.create_webhook(create()).await.expect_err("a third");
    // As the platform's other quotas: FAILED_PRECONDITION (the caller must delete one first).
    assert_eq!(full.code(), Code::FailedPrecondition);
    assert!(full.message().contains("at most 2 webhooks"), "{full:?}");
    // A deleted one frees its place.
    hooks
        .delete_webhook(DeleteWebhookRequest {
            name: first.name,
            etag: String::new(),
        })
        .await
        .expect("delete");
    hooks.create_webhook(create()).await.expect("room again");
}

fn no_allow_list(layers: taskmesh_mesh::ConfigLayers) -> taskmesh_mesh::ConfigLayers {
    layers.set("webhooks.egress.allow_networks", Vec::<String>::new())
}

#[tokio::test]
async fn a_webhook_inside_the_platform_is_refused_unless_allow_listed() {
    let world = World::with(no_allow_list).await;
    let mut hooks = world.webhooks(OWNER);
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://2130706433/hook",
        "ftp://example.com/hook",
    ] {
        let status = hooks
            .create_webhook(CreateWebhookRequest {
                parent: world.project.clone(),
                webhook: Some(Webhook {
                    url: url.into(),
                    active: true,
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect_err(url);
        assert_eq!(status.code(), Code::InvalidArgument, "{url}: {status:?}");
    }
    // The default world allows this machine (as a test setup would allow-list it).
    let allowed = World::new().await;
    let receiver = Receiver::start(&[]).await;
    webhook(&allowed, &receiver.url, "").await;
}
