//! The ping example runs on the real stack: authenticated, counted, and its event published.

mod kit;

use taskmesh_example_ping::pb::{PingRequest, ping_service_client::PingServiceClient};
use taskmesh_example_ping::{App, Config};
use taskmesh_testing::{Stack, TestDatabase, as_user, with_identity};

#[tokio::test]
async fn ping_is_authenticated_counted_and_published() {
    let stack = Stack::load();
    let db = TestDatabase::create(&stack, "ping_test").await;
    let layers = with_identity(db.app_layers(Config::default_layers(), &stack, &stack.nats_url));
    let app = App::build(Config::from_layers(&layers).expect("config"))
        .await
        .expect("builds");
    let url = format!("http://{}", app.grpc_addr());
    tokio::spawn(app.run(std::future::pending()));
    let mut client = PingServiceClient::connect(url).await.expect("connect");

    let request = || PingRequest {
        message: "hello".to_owned(),
    };
    let refused = client.ping(request()).await.expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    for expected in 1..=2 {
        let reply = client
            .ping(as_user("ada", request()))
            .await
            .expect("ping")
            .into_inner();
        assert_eq!((reply.message.as_str(), reply.count), ("hello", expected));
    }

    let mut conn = db.connect(&stack).await;
    for _ in 0..100 {
        let published: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM mesh_outbox WHERE published_at IS NOT NULL \
             AND subject = 'taskmesh.ping.v1.pinged' AND resource = 'users/ada'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("outbox");
        if published == 2 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the Pinged events were not published to the PING stream");
}

/// A service whose Vault token lives 2 s (at most 4 s, so renewal alone cannot keep it) keeps a
/// working token: it renews it, then logs in again, and readiness (which checks the token) stays
/// true long after the first token died.
#[tokio::test]
async fn the_vault_token_is_kept_alive_past_its_lifetime() {
    let stack = Stack::load();
    let db = TestDatabase::create(&stack, "ping_vault_test").await;
    let dir = std::env::temp_dir().join(format!("ping-vault-{}", uuid::Uuid::new_v4().simple()));
    let (role_id, secret_id) = db.approle_with_ttl(&stack, &dir, Some((2, 4))).await;
    let layers = with_identity(db.app_layers(Config::default_layers(), &stack, &stack.nats_url))
        .set("vault.auth", "approle")
        .set("vault.role_id_file", role_id.display().to_string())
        .set("vault.secret_id_file", secret_id.display().to_string());
    let app = App::build(Config::from_layers(&layers).expect("config"))
        .await
        .expect("builds");
    let admin = app.admin_addr();
    tokio::spawn(app.run(std::future::pending()));
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    let ready = reqwest::get(format!("http://{admin}/readyz"))
        .await
        .expect("readyz");
    let status = ready.status();
    let body = ready.text().await.expect("body");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"vault\":true"), "{body}");
    let _ = std::fs::remove_dir_all(dir);
}
