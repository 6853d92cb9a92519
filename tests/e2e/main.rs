//! Every service and the gateway as real processes, wired as `make up` wires them (AppRole logins,
//! only the Vault address and credential files in their environment), driven through the gateway:
//! REST with an HTTP client and gRPC with grpcurl.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use taskmesh_testing::{NatsServer, Stack, TestDatabase, free_port};

/// The workspace's binaries sit next to this test's directory (`target/debug`).
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --bins`",
        path.display()
    );
    path
}

/// A service process, killed when dropped.
struct Process {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    fn start(name: &'static str, envs: &[(&str, String)], args: &[&str], dir: &Path) -> Self {
        let log = dir.join(format!("{name}.log"));
        let mut command = Command::new(binary(name));
        for (key, _) in std::env::vars() {
            if key.starts_with("TASKMESH_") || key.starts_with("VAULT_") {
                command.env_remove(key);
            }
        }
        let child = command
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn");
        Self {
            name,
            child: Some(child),
            log,
        }
    }

    /// SIGTERM and wait: a graceful stop exits 0.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().expect("wait")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("{} log: {}", self.name, self.log.display());
        }
    }
}

async fn wait_ready(admin_port: u16) {
    let client = reqwest::Client::new();
    for _ in 0..240 {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{admin_port}/readyz"))
            .send()
            .await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the service with admin port {admin_port} never became ready");
}

async fn service_env(
    stack: &Stack,
    nats: &NatsServer,
    prefix: &str,
    dir: &Path,
) -> (Vec<(&'static str, String)>, u16, u16) {
    let db = TestDatabase::create(stack, prefix).await;
    let (role_id, secret_id) = db.approle(stack, &dir.join(prefix)).await;
    let (grpc, admin) = (free_port(), free_port());
    let env = vec![
        ("TASKMESH_VAULT__ADDR", stack.vault_addr.clone()),
        ("TASKMESH_VAULT__AUTH", "approle".to_owned()),
        (
            "TASKMESH_VAULT__ROLE_ID_FILE",
            role_id.display().to_string(),
        ),
        (
            "TASKMESH_VAULT__SECRET_ID_FILE",
            secret_id.display().to_string(),
        ),
        ("TASKMESH_VAULT__SECRET_PATH", db.secret_path.clone()),
        ("TASKMESH_DATABASE__PORT", stack.pg_port.to_string()),
        ("TASKMESH_NATS__URL", nats.url()),
        ("TASKMESH_GRPC__LISTEN", format!("127.0.0.1:{grpc}")),
        ("TASKMESH_ADMIN__LISTEN", format!("127.0.0.1:{admin}")),
    ];
    (env, grpc, admin)
}

/// An HTTP server for jobs to crawl.
async fn job_target() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buffer = [0_u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let body = "a service mesh, and another mesh";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

/// Ada's access token, once she has logged in through the gateway.
static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn rest(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url);
    if let Some(token) = TOKEN.get() {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("text");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_works_end_to_end_through_the_gateway() {
    let stack = Stack::load();
    // A private NATS: durable consumers are shared by name, so a `make up` running beside the
    // tests must not take this platform's messages.
    let nats = NatsServer::start(&stack).await;
    let dir = std::env::temp_dir().join(format!("taskmesh-e2e-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");

    let (identity_env, identity_grpc, identity_admin) =
        service_env(&stack, &nats, "e2e_identity", &dir).await;
    let secret_path = identity_env
        .iter()
        .find(|(k, _)| *k == "TASKMESH_VAULT__SECRET_PATH")
        .map(|(_, v)| v.clone())
        .expect("secret path");
    taskmesh_testing::identity::provision_keys(&stack, &secret_path).await;
    let mut identity = Process::start("identity", &identity_env, &[], &dir);
    wait_ready(identity_admin).await;
    let verify_with = (
        "TASKMESH_AUTH__IDENTITY_ENDPOINT",
        format!("http://127.0.0.1:{identity_grpc}"),
    );

    let (mut projects_env, projects_grpc, projects_admin) =
        service_env(&stack, &nats, "e2e_projects", &dir).await;
    projects_env.push(verify_with.clone());
    let mut projects = Process::start("projects", &projects_env, &[], &dir);
    wait_ready(projects_admin).await;

    let (mut tasks_env, tasks_grpc, tasks_admin) =
        service_env(&stack, &nats, "e2e_tasks", &dir).await;
    tasks_env.push(verify_with.clone());
    tasks_env.push((
        "TASKMESH_PROJECTS__ENDPOINT",
        format!("http://127.0.0.1:{projects_grpc}"),
    ));
    let mut tasks = Process::start("tasks", &tasks_env, &[], &dir);
    wait_ready(tasks_admin).await;

    let (mut execution_env, execution_grpc, execution_admin) =
        service_env(&stack, &nats, "e2e_execution", &dir).await;
    execution_env.push(verify_with.clone());
    execution_env.push((
        "TASKMESH_PROJECTS__ENDPOINT",
        format!("http://127.0.0.1:{projects_grpc}"),
    ));
    let mut execution = Process::start("execution", &execution_env, &[], &dir);
    wait_ready(execution_admin).await;
    let jobs_server = job_target().await;

    let (http, grpc, admin) = (free_port(), free_port(), free_port());
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "http_listen = \"127.0.0.1:{http}\"\ngrpc_listen = \"127.0.0.1:{grpc}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\n\
             [auth]\nidentity_endpoint = \"http://127.0.0.1:{identity_grpc}\"\n\n\
             [[upstreams]]\nprefix = \"taskmesh.identity\"\nendpoint = \"http://127.0.0.1:{identity_grpc}\"\ntimeout_ms = 10000\n\n\
             [[upstreams]]\nprefix = \"taskmesh.projects\"\nendpoint = \"http://127.0.0.1:{projects_grpc}\"\ntimeout_ms = 10000\n\n\
             [[upstreams]]\nprefix = \"taskmesh.tasks\"\nendpoint = \"http://127.0.0.1:{tasks_grpc}\"\ntimeout_ms = 10000\n\n\
             [[upstreams]]\nprefix = \"taskmesh.execution\"\nendpoint = \"http://127.0.0.1:{execution_grpc}\"\ntimeout_ms = 60000\n"
        ),
    )
    .expect("gateway config");
    let config_arg = config.display().to_string();
    let mut gateway = Process::start("gateway", &[], &["--config", &config_arg], &dir);
    wait_ready(admin).await;

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{http}");
    use reqwest::Method;

    // Without a token the gateway's upstreams refuse the call.
    let (status, refused) = rest(&client, Method::GET, format!("{base}/v1/projects"), None).await;
    assert_eq!(status, 401, "{refused}");
    assert_eq!(refused["code"], 16);

    // Register, wait for the saga (personal organization) to activate the account, log in.
    let (status, user) = rest(
        &client,
        Method::POST,
        format!("{base}/v1/users:register"),
        Some(json!({"username": "ada", "email": "ada@example.org", "password": "correct horse battery"})),
    )
    .await;
    assert_eq!(status, 200, "{user}");
    let mut session = Value::Null;
    for _ in 0..100 {
        let (status, body) = rest(
            &client,
            Method::POST,
            format!("{base}/v1/sessions:login"),
            Some(json!({"email": "ada@example.org", "password": "correct horse battery"})),
        )
        .await;
        if status == 200 {
            session = body;
            break;
        }
        assert_eq!(
            body["details"][0]["reason"], "REGISTRATION_PENDING",
            "{body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = session["accessToken"]
        .as_str()
        .expect("logged in")
        .to_owned();
    assert_eq!(session["user"]["personalOrganization"], "organizations/ada");
    TOKEN.set(token.clone()).expect("token once");
    let first_refresh = session["refreshToken"]
        .as_str()
        .expect("refresh")
        .to_owned();

    // A refresh rotates the refresh token; an API key works in place of a token.
    let (status, refreshed) = rest(
        &client,
        Method::POST,
        format!("{base}/v1/sessions:refresh"),
        Some(json!({"refreshToken": first_refresh})),
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let second_refresh = refreshed["refreshToken"]
        .as_str()
        .expect("rotated")
        .to_owned();
    let (status, created_key) = rest(
        &client,
        Method::POST,
        format!("{base}/v1/users/ada/apiKeys"),
        Some(json!({"displayName": "ci", "scope": "API_KEY_SCOPE_READ"})),
    )
    .await;
    assert_eq!(status, 200, "{created_key}");
    let key_secret = created_key["secret"].as_str().expect("secret").to_owned();
    let with_key = client
        .get(format!("{base}/v1/projects"))
        .header("x-api-key", &key_secret)
        .send()
        .await
        .expect("send");
    assert_eq!(with_key.status().as_u16(), 200);
    let read_only = client
        .post(format!("{base}/v1/projects"))
        .header("x-api-key", &key_secret)
        .json(&json!({"displayName": "nope"}))
        .send()
        .await
        .expect("send");
    assert_eq!(read_only.status().as_u16(), 403, "a read key cannot write");
    let signing_keys: Value = vaultrs::kv2::read(
        &stack.vault(),
        "secret",
        &format!("{secret_path}/signing-keys"),
    )
    .await
    .expect("signing keys");
    let private_key = signing_keys["keys"][0]["private_key"]
        .as_str()
        .expect("private key")
        .to_owned();
    let secrets = [
        ("password", "correct horse battery".to_owned()),
        ("access token", token.clone()),
        ("refresh token", first_refresh),
        ("rotated refresh token", second_refresh),
        ("API key secret", key_secret),
        ("signing key", private_key),
    ];

    let (status, project) = rest(
        &client,
        Method::POST,
        format!("{base}/v1/projects"),
        Some(json!({"displayName": "E2E"})),
    )
    .await;
    assert_eq!(status, 200, "{project}");
    let project = project["name"].as_str().expect("project").to_owned();
    let (status, board) = rest(
        &client,
        Method::POST,
        format!("{base}/v1/{project}/boards"),
        Some(json!({"displayName": "Main"})),
    )
    .await;
    assert_eq!(status, 200, "{board}");
    let board = board["name"].as_str().expect("board").to_owned();
    let (_, columns) = rest(
        &client,
        Method::GET,
        format!("{base}/v1/{board}/columns"),
        None,
    )
    .await;
    let column = |kind: &str| -> String {
        columns["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .find(|c| c["kind"] == kind)
            .and_then(|c| c["name"].as_str())
            .expect("column")
            .to_owned()
    };

    let (status, task) = rest(
        &client,
        Method::POST,
        format!("{base}/v1/{project}/tasks"),
        Some(json!({"title": "Ship it", "column": column("COLUMN_KIND_TODO"), "labels": ["release"]})),
    )
    .await;
    assert_eq!(status, 200, "{task}");
    let task = task["name"].as_str().expect("task").to_owned();
    let (status, moved) = rest(
        &client,
        Method::POST,
        format!("{base}/v1/{task}:move"),
        Some(json!({"column": column("COLUMN_KIND_DOING")})),
    )
    .await;
    assert_eq!(
        (status, moved["status"].as_str()),
        (200, Some("STATUS_DOING")),
        "{moved}"
    );
    let (status, done) = rest(
        &client,
        Method::POST,
        format!("{base}/v1/{task}:complete"),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, done["status"].as_str()),
        (200, Some("STATUS_DONE")),
        "{done}"
    );
    let (status, _) = rest(
        &client,
        Method::POST,
        format!("{base}/v1/{task}/comments"),
        Some(json!({"text": "shipped"})),
    )
    .await;
    assert_eq!(status, 200);

    let mut listed = Value::Null;
    for _ in 0..100 {
        let (_, page) = rest(
            &client,
            Method::GET,
            format!("{base}/v1/{project}/tasks?filter=labels%3A%22release%22"),
            None,
        )
        .await;
        if page["tasks"][0]["status"] == "STATUS_DONE" {
            listed = page;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        listed["tasks"][0]["name"], task,
        "the read model caught up: {listed}"
    );
    let (_, activity) = rest(
        &client,
        Method::GET,
        format!("{base}/v1/{task}/activity"),
        None,
    )
    .await;
    assert!(
        activity["activities"]
            .as_array()
            .is_some_and(|a| a.len() >= 3),
        "{activity}"
    );

    let (status, missing) = rest(
        &client,
        Method::GET,
        format!(
            "{base}/v1/{project}/tasks/{}",
            uuid::Uuid::now_v7().simple()
        ),
        None,
    )
    .await;
    assert_eq!(status, 404, "{missing}");

    // gRPC through the gateway, with grpcurl and reflection.
    let grpcurl = stack.bin("grpcurl");
    let listed = Command::new(&grpcurl)
        .args(["-plaintext", &format!("127.0.0.1:{grpc}"), "list"])
        .output()
        .expect("grpcurl");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("taskmesh.tasks.v1.TaskService")
            && listed.contains("taskmesh.projects.v1.ProjectService"),
        "{listed}"
    );
    let fetched = Command::new(&grpcurl)
        .args([
            "-plaintext",
            "-H",
            &format!("authorization: Bearer {token}"),
            "-d",
            &json!({"name": task}).to_string(),
            &format!("127.0.0.1:{grpc}"),
            "taskmesh.tasks.v1.TaskService/GetTask",
        ])
        .output()
        .expect("grpcurl call");
    assert!(String::from_utf8_lossy(&fetched.stdout).contains("STATUS_DONE"));

    // A task with a job: the execution service runs it; its progress streams through the gateway
    // as NDJSON and as Server-Sent Events, and the task shows the outcome.
    let (status, job_task) = rest(
        &client,
        Method::POST,
        format!("{base}/v1/{project}/tasks"),
        Some(json!({
            "title": "Crawl",
            "column": column("COLUMN_KIND_TODO"),
            "job": {"webCrawl": {"url": format!("http://{jobs_server}/page"), "query": "mesh"}}
        })),
    )
    .await;
    assert_eq!(status, 200, "{job_task}");
    let job_task = job_task["name"].as_str().expect("task").to_owned();
    let mut execution_name = String::new();
    for _ in 0..100 {
        let (_, listed) = rest(
            &client,
            Method::GET,
            format!("{base}/v1/{job_task}/executions"),
            None,
        )
        .await;
        if let Some(name) = listed["executions"][0]["name"].as_str() {
            execution_name = name.to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !execution_name.is_empty(),
        "the execution was created from the task event"
    );
    let ndjson = client
        .get(format!("{base}/v1/{execution_name}:watch"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("watch")
        .text()
        .await
        .expect("ndjson");
    let records: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let last = records.last().expect("records");
    assert_eq!(
        last["result"]["state"], "EXECUTION_STATE_SUCCEEDED",
        "{ndjson}"
    );
    assert_eq!(
        last["result"]["result"]["webCrawl"]["matchCount"], 2,
        "{ndjson}"
    );
    let sse = client
        .get(format!("{base}/v1/{execution_name}:watch"))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("sse")
        .text()
        .await
        .expect("sse body");
    assert!(
        sse.starts_with("event: message\ndata: {\"result\""),
        "{sse}"
    );
    assert!(sse.contains("EXECUTION_STATE_SUCCEEDED"));
    let mut job_status = Value::Null;
    for _ in 0..100 {
        let (_, fetched) = rest(&client, Method::GET, format!("{base}/v1/{job_task}"), None).await;
        if fetched["jobStatus"]["state"] == "JOB_STATE_SUCCEEDED" {
            job_status = fetched["jobStatus"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        job_status["execution"],
        execution_name.as_str(),
        "the task shows its job's outcome"
    );

    assert!(gateway.stop().success(), "the gateway stops gracefully");
    assert!(execution.stop().success(), "execution stops gracefully");
    assert!(tasks.stop().success(), "tasks stops gracefully");
    assert!(projects.stop().success(), "projects stops gracefully");
    assert!(identity.stop().success(), "identity stops gracefully");

    // The logs of the whole flow hold no credential.
    let mut scanned = 0;
    for entry in std::fs::read_dir(&dir).expect("log dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).expect("log");
            assert!(!text.is_empty(), "{} is empty", path.display());
            scanned += text.lines().count();
            for (what, secret) in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "the {what} appears in {}",
                    path.display()
                );
            }
        }
    }
    assert!(scanned > 50, "the flow logged {scanned} lines");
    let _ = std::fs::remove_dir_all(&dir);
}
