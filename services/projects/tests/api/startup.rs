//! Startup, shutdown and operations: Vault failures, bad configuration, AppRole login without the
//! password ever reaching env or logs, password rotation, grpcurl through reflection, health,
//! readiness, metrics and graceful shutdown.

use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use taskmesh_contracts::projects_v1::{CreateProjectRequest, GetProjectRequest, Project};
use taskmesh_projects::{App, Config};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use taskmesh_testing::free_port;

use crate::helpers::{Stack, TestDatabase, service_binary, spawn_app, start, test_layers};

#[test]
fn an_unreachable_vault_stops_startup_with_one_clear_line() {
    let port = free_port();
    let output = service_binary()
        .env("TASKMESH_VAULT__ADDR", format!("http://127.0.0.1:{port}"))
        .env("TASKMESH_VAULT__AUTH", "token")
        .env("TASKMESH_VAULT__TOKEN_FILE", "/dev/null")
        .env("TASKMESH_GRPC__LISTEN", "127.0.0.1:0")
        .env("TASKMESH_ADMIN__LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .output()
        .expect("run the service");
    assert!(!output.status.success());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].contains(&format!("vault unreachable at http://127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn a_bad_configuration_value_exits_64_naming_the_key() {
    let output = service_binary()
        .env("TASKMESH_DATABASE__PORT", "not-a-port")
        .stdin(Stdio::null())
        .output()
        .expect("run the service");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("database.port"), "{stderr}");

    let output = service_binary()
        .env("TASKMESH_VAULT__AUTH", "approle")
        .env("TASKMESH_VAULT__ROLE_ID", "r")
        .stdin(Stdio::null())
        .output()
        .expect("run the service");
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("vault.secret_id_file"));
}

#[test]
fn show_config_prints_the_effective_configuration_without_inline_secrets() {
    let output = service_binary()
        .env("TASKMESH_VAULT__AUTH", "token")
        .env("TASKMESH_VAULT__TOKEN", "inline-root-token")
        .env(
            "TASKMESH_PROJECTS__ENDPOINT",
            "http://projects.example:50052",
        )
        .env("TASKMESH_GRPC__LISTEN", "0.0.0.0:50099")
        .arg("show-config")
        .stdin(Stdio::null())
        .output()
        .expect("run the service");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let config: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(config["mesh"]["grpc"]["listen"], "0.0.0.0:50099");
    assert_eq!(config["mesh"]["vault"]["auth"], "token");
    assert_eq!(
        config["mesh"]["auth"]["identity_endpoint"],
        "http://127.0.0.1:50051"
    );
    assert!(!stdout.contains("inline-root-token"), "{stdout}");
}

#[tokio::test]
async fn probe_answers_zero_for_a_serving_listener_and_one_when_it_is_gone() {
    let mut app = spawn_app().await;
    // Run without blocking the test's runtime, which serves the app being probed.
    let probe = |addr: std::net::SocketAddr| {
        let mut command = tokio::process::Command::from(service_binary());
        command
            .env("TASKMESH_VAULT__AUTH", "token")
            .env("TASKMESH_VAULT__TOKEN", "unused-by-a-probe")
            .env("TASKMESH_GRPC__LISTEN", addr.to_string())
            .arg("probe")
            .stdin(Stdio::null());
        async move { command.output().await.expect("run the probe") }
    };
    let serving = probe(app.addr).await;
    assert_eq!(serving.status.code(), Some(0), "{serving:?}");
    app.stop().await;
    let gone = probe(app.addr).await;
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains(&app.addr.port().to_string()),
        "{gone:?}"
    );
}

#[tokio::test]
async fn a_refused_login_and_a_missing_secret_are_named() {
    let stack = Stack::load();
    let db = TestDatabase::create(&stack, "projects_test").await;
    let wrong_token = test_layers(&stack, &db).set("vault.token", "not-a-token");
    let err = App::build(Config::from_layers(&wrong_token).expect("config"))
        .await
        .expect_err("login refused");
    assert!(err.to_string().contains("vault login (token)"), "{err}");

    let missing = test_layers(&stack, &db).set("vault.secret_path", "taskmesh/tests/nothing-here");
    let err = App::build(Config::from_layers(&missing).expect("config"))
        .await
        .expect_err("missing secret");
    let text = err.to_string();
    assert!(
        text.contains("secret/taskmesh/tests/nothing-here/database"),
        "{text}"
    );
    assert!(text.contains("missing"), "{text}");
}

#[tokio::test]
async fn the_service_connects_after_the_password_is_rotated_in_vault_and_postgres() {
    let mut app = spawn_app().await;
    let created = app
        .projects()
        .create_project(CreateProjectRequest {
            project: Some(Project {
                display_name: "Survivor".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner();
    app.stop().await;

    let stack = app.stack.clone();
    let mut db = app.db.clone();
    let old_password = db.password.clone();
    db.rotate_password(&stack).await;
    assert_ne!(db.password, old_password);

    let restarted = start(stack, db, |l| l).await;
    let fetched = restarted
        .projects()
        .get_project(GetProjectRequest {
            name: created.name.clone(),
        })
        .await
        .expect("get after rotation")
        .into_inner();
    assert_eq!(fetched.name, created.name);
}

/// Kills a spawned service if the test fails before stopping it.
struct KillOnDrop(Option<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

#[tokio::test]
async fn approle_login_keeps_the_password_out_of_env_and_logs() {
    let stack = Stack::load();
    let db = TestDatabase::create(&stack, "projects_test").await;
    let dir = std::env::temp_dir().join(format!(
        "taskmesh-approle-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    db.approle(&stack, &dir).await;

    let admin_port = free_port();
    let grpc_port = free_port();
    let log_file = dir.join("service.log");
    let child = service_binary()
        .env("TASKMESH_VAULT__ADDR", &stack.vault_addr)
        .env("TASKMESH_VAULT__AUTH", "approle")
        .env("TASKMESH_VAULT__ROLE_ID_FILE", dir.join("role-id"))
        .env("TASKMESH_VAULT__SECRET_ID_FILE", dir.join("secret-id"))
        .env("TASKMESH_VAULT__SECRET_PATH", &db.secret_path)
        .env("TASKMESH_DATABASE__PORT", stack.pg_port.to_string())
        .env("TASKMESH_NATS__URL", &stack.nats_url)
        .env("TASKMESH_GRPC__LISTEN", format!("127.0.0.1:{grpc_port}"))
        .env("TASKMESH_ADMIN__LISTEN", format!("127.0.0.1:{admin_port}"))
        .env("TASKMESH_TELEMETRY__LOG_LEVEL", "debug")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log_file).expect("log file"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the service");

    let mut guard = KillOnDrop(Some(child.id()));

    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..120 {
        if let Ok(response) = http
            .get(format!("http://127.0.0.1:{admin_port}/readyz"))
            .send()
            .await
            && response.status().is_success()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(ready, "the service became ready with its AppRole");

    // One call with a trace context and a correlation id: its log lines must carry both.
    let mut grpc =
        taskmesh_contracts::projects_v1::project_service_client::ProjectServiceClient::connect(
            format!("http://127.0.0.1:{grpc_port}"),
        )
        .await
        .expect("connect");
    let mut request = tonic::Request::new(GetProjectRequest {
        name: "projects/traced".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .expect("ascii"),
    );
    request
        .metadata_mut()
        .insert("x-correlation-id", "corr-77".parse().expect("ascii"));
    grpc.get_project(request).await.expect_err("not found");

    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).expect("environ");
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        !environ.contains(&db.password),
        "the password is not in the environment"
    );

    // SIGTERM: a graceful stop exits 0.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    guard.0 = None;
    assert!(
        status.status.success(),
        "graceful exit: {:?}",
        status.status
    );
    let logs = std::fs::read_to_string(&log_file).expect("logs");
    assert!(
        logs.contains("server stopped"),
        "the service logged its shutdown"
    );
    assert!(
        !logs.contains(&db.password),
        "the password is not in the logs"
    );
    assert!(!String::from_utf8_lossy(&status.stderr).contains(&db.password));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn grpcurl_lists_the_services_and_checks_health_through_reflection() {
    let app = spawn_app().await;
    let grpcurl = app.stack.bin("grpcurl");
    let addr = app.addr.to_string();
    let list = tokio::process::Command::new(&grpcurl)
        .args(["-plaintext", &addr, "list"])
        .output()
        .await
        .expect("grpcurl list");
    let listed = String::from_utf8_lossy(&list.stdout);
    for service in [
        "taskmesh.projects.v1.ProjectService",
        "taskmesh.projects.v1.OrganizationService",
        "taskmesh.projects.v1.BoardService",
        "taskmesh.projects.v1.MemberService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            listed.lines().any(|l| l == service),
            "{service} in {listed}"
        );
    }
    let health = tokio::process::Command::new(&grpcurl)
        .args(["-plaintext", &addr, "grpc.health.v1.Health/Check"])
        .output()
        .await
        .expect("grpcurl health");
    assert!(String::from_utf8_lossy(&health.stdout).contains("SERVING"));

    let create = tokio::process::Command::new(&grpcurl)
        .args([
            "-plaintext",
            "-H",
            &format!(
                "authorization: Bearer {}",
                taskmesh_testing::identity::token("ada")
            ),
            "-d",
            r#"{"project":{"displayName":"x"}}"#,
            &addr,
            "taskmesh.projects.v1.ProjectService/CreateProject",
        ])
        .output()
        .await
        .expect("grpcurl create");
    let created = String::from_utf8_lossy(&create.stdout);
    assert!(created.contains(r#""displayName": "x""#), "{created}");

    let invalid = tokio::process::Command::new(&grpcurl)
        .args([
            "-plaintext",
            "-H",
            &format!(
                "authorization: Bearer {}",
                taskmesh_testing::identity::token("ada")
            ),
            "-d",
            r#"{"project":{"displayName":""}}"#,
            &addr,
            "taskmesh.projects.v1.ProjectService/CreateProject",
        ])
        .output()
        .await
        .expect("grpcurl invalid");
    let said = String::from_utf8_lossy(&invalid.stderr);
    assert!(said.contains("InvalidArgument"), "{said}");
    assert!(
        said.contains("google.rpc.BadRequest"),
        "details decode through reflection: {said}"
    );
}

#[tokio::test]
async fn admin_port_serves_health_readiness_and_metrics() {
    let app = spawn_app().await;
    app.projects()
        .get_project(GetProjectRequest {
            name: "projects/none".into(),
        })
        .await
        .expect_err("not found");
    // A call its contract refuses is answered, and counted, like any other.
    let refused = app
        .projects()
        .create_project(CreateProjectRequest::default())
        .await
        .expect_err("invalid");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    // Paths no RPC has are counted under `unknown`, never under the path the caller invented.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    for n in 0..3 {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.expect("ready");
        let path = format!("/invented.Service{n}/Method")
            .parse()
            .expect("path");
        let outcome: Result<tonic::Response<bytes::Bytes>, tonic::Status> = grpc
            .unary(
                tonic::Request::new(bytes::Bytes::new()),
                path,
                taskmesh_mesh::codec::RawCodec,
            )
            .await;
        assert!(outcome.is_err());
    }
    let http = reqwest::Client::new();
    let base = format!("http://{}", app.admin_addr);
    let healthz = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(healthz.status(), 200);
    let readyz = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(readyz.status(), 200);
    let body = String::from_utf8_lossy(&readyz.bytes().await.expect("body")).into_owned();
    for check in ["database", "nats", "vault"] {
        assert!(body.contains(&format!("\"{check}\":true")), "{body}");
    }
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics");
    let text = String::from_utf8_lossy(&metrics.bytes().await.expect("body")).into_owned();
    assert!(
        text.contains("grpc_server_handled_total{code=\"PERMISSION_DENIED\",method=\"/taskmesh.projects.v1.ProjectService/GetProject\""),
        "{text}"
    );
    assert!(text.contains("outbox_published_total"));
    assert!(
        text.contains("grpc_server_handled_total{code=\"INVALID_ARGUMENT\",method=\"/taskmesh.projects.v1.ProjectService/CreateProject\""),
        "{text}"
    );
    assert!(!text.contains("invented.Service"), "{text}");
    assert!(text.contains("method=\"unknown\""), "{text}");
}

#[tokio::test]
async fn shutdown_reports_not_serving_and_echoes_request_ids_while_up() {
    let mut app = spawn_app().await;
    let mut request = tonic::Request::new(GetProjectRequest {
        name: "projects/x".into(),
    });
    request
        .metadata_mut()
        .insert("x-request-id", "req-123".parse().expect("ascii"));
    let status = app
        .projects()
        .get_project(request)
        .await
        .expect_err("not found");
    assert_eq!(
        status
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("req-123")
    );

    let mut health = HealthClient::new(app.channel.clone());
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.next().await.expect("first status").expect("ok");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    let stopping = tokio::spawn(async move { app.stop().await });
    let next = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("a status change during shutdown")
        .expect("status")
        .expect("ok");
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    stopping.await.expect("stopped");
}

#[tokio::test]
async fn a_call_past_its_deadline_is_abandoned_with_deadline_exceeded() {
    use sqlx::Connection;
    let app = spawn_app().await;
    let created = app
        .projects()
        .create_project(CreateProjectRequest {
            project: Some(Project {
                display_name: "Locked".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner();
    // Hold the project's row lock so that the update below cannot finish in time.
    let url = format!(
        "postgres://{}:{}@127.0.0.1:{}/{}",
        app.db.name, app.db.password, app.stack.pg_port, app.db.name
    );
    let mut blocker = sqlx::PgConnection::connect(&url).await.expect("connect");
    let mut tx = blocker.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM projects WHERE id = $1 FOR UPDATE")
        .bind(created.name.trim_start_matches("projects/"))
        .execute(&mut *tx)
        .await
        .expect("lock");

    let mut request = tonic::Request::new(taskmesh_contracts::projects_v1::UpdateProjectRequest {
        project: Some(Project {
            name: created.name.clone(),
            display_name: "Too late".into(),
            ..Default::default()
        }),
        update_mask: None,
    });
    request.set_timeout(Duration::from_millis(300));
    let err = app
        .projects()
        .update_project(request)
        .await
        .expect_err("deadline");
    // The client may notice its own deadline first; either way the server gave up.
    assert!(
        matches!(
            err.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{err:?}"
    );
    tx.commit().await.expect("release");

    let http = reqwest::Client::new();
    let metrics = http
        .get(format!("http://{}/metrics", app.admin_addr))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("code=\"DEADLINE_EXCEEDED\",method=\"/taskmesh.projects.v1.ProjectService/UpdateProject\""),
        "the server answered DEADLINE_EXCEEDED: {metrics}"
    );
    let fetched = app
        .projects()
        .get_project(GetProjectRequest { name: created.name })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        fetched.display_name, "Locked",
        "the abandoned update did not apply"
    );
}
