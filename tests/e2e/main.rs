//! Every service and the gateway as real processes, wired as `make up` wires them (AppRole logins,
//! only the Vault address and credential files in their environment), driven through the gateway:
//! sign-up and sign-in, projects, boards and tasks over REST, gRPC with grpcurl and with a Python
//! client generated from the contracts, a job streamed as
//! NDJSON and SSE, and finally a scan of every process log for credentials.

mod broker;
mod contract;
mod harness;
mod load;
mod marketplace;
mod notes;
mod notifications;
mod outage;
mod rest;
mod restart;
mod schedules;
mod secrets;
mod targets;

use std::process::Command;

use serde_json::{Value, json};
use taskmesh_testing::Stack;

use harness::{Platform, Rest, poll};
use targets::job_target;

const PASSWORD: &str = "correct horse battery";

/// The credentials a user collects through the gateway; none may ever reach a log.
struct Credentials {
    access_token: String,
    refresh_tokens: [String; 2],
    api_key: String,
}

/// Registers ada, waits for the registration saga, logs in, refreshes once and creates a read key;
/// checks the key reads and cannot write.
async fn sign_up(rest: &mut Rest) -> Credentials {
    let (status, refused) = rest.get("/v1/projects").await;
    assert_eq!(status, 401, "without a token: {refused}");
    assert_eq!(refused["code"], 16);

    let session = rest.register("ada", PASSWORD).await;
    assert_eq!(session["user"]["personalOrganization"], "organizations/ada");
    let text = |value: &Value, field: &str| value[field].as_str().expect(field).to_owned();
    let access_token = text(&session, "accessToken");
    let first_refresh = text(&session, "refreshToken");

    let (status, refreshed) = rest
        .post(
            "/v1/sessions:refresh",
            json!({"refreshToken": first_refresh}),
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let (status, created) = rest
        .post(
            "/v1/users/ada/apiKeys",
            json!({"displayName": "ci", "scope": "API_KEY_SCOPE_READ"}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let api_key = text(&created, "secret");
    let with_key = rest
        .client
        .get(rest.url("/v1/projects"))
        .header("x-api-key", &api_key)
        .send()
        .await
        .expect("send");
    assert_eq!(with_key.status().as_u16(), 200);
    let read_only = rest
        .client
        .post(rest.url("/v1/projects"))
        .header("x-api-key", &api_key)
        .json(&json!({"displayName": "nope"}))
        .send()
        .await
        .expect("send");
    assert_eq!(read_only.status().as_u16(), 403, "a read key cannot write");
    Credentials {
        access_token,
        refresh_tokens: [first_refresh, text(&refreshed, "refreshToken")],
        api_key,
    }
}

/// A project with a board; returns the project and the board's columns by kind.
async fn project_with_board(rest: &Rest) -> (String, Value) {
    let (status, project) = rest
        .post("/v1/projects", json!({"displayName": "E2E"}))
        .await;
    assert_eq!(status, 200, "{project}");
    let project = project["name"].as_str().expect("project").to_owned();
    let (status, board) = rest
        .post(
            &format!("/v1/{project}/boards"),
            json!({"displayName": "Main"}),
        )
        .await;
    assert_eq!(status, 200, "{board}");
    let board = board["name"].as_str().expect("board");
    let (_, columns) = rest.get(&format!("/v1/{board}/columns")).await;
    (project, columns)
}

fn column(columns: &Value, kind: &str) -> String {
    columns["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .find(|c| c["kind"] == kind)
        .and_then(|c| c["name"].as_str())
        .expect("column")
        .to_owned()
}

/// Create, move, complete and comment a task; the read model and the activity feed follow.
async fn task_lifecycle(rest: &Rest, project: &str, columns: &Value) -> String {
    let (status, task) = rest
        .post(
            &format!("/v1/{project}/tasks"),
            json!({"title": "Ship it", "column": column(columns, "COLUMN_KIND_TODO"), "labels": ["release"]}),
        )
        .await;
    assert_eq!(status, 200, "{task}");
    let task = task["name"].as_str().expect("task").to_owned();
    let (status, moved) = rest
        .post(
            &format!("/v1/{task}:move"),
            json!({"column": column(columns, "COLUMN_KIND_DOING")}),
        )
        .await;
    assert_eq!(
        (status, moved["status"].as_str()),
        (200, Some("STATUS_DOING")),
        "{moved}"
    );
    let (status, done) = rest.post(&format!("/v1/{task}:complete"), json!({})).await;
    assert_eq!(
        (status, done["status"].as_str()),
        (200, Some("STATUS_DONE")),
        "{done}"
    );
    let (status, _) = rest
        .post(&format!("/v1/{task}/comments"), json!({"text": "shipped"}))
        .await;
    assert_eq!(status, 200);

    let listed = poll("the read model catching up", || async {
        let (_, page) = rest
            .get(&format!(
                "/v1/{project}/tasks?filter=labels%3A%22release%22"
            ))
            .await;
        (page["tasks"][0]["status"] == "STATUS_DONE").then_some(page)
    })
    .await;
    assert_eq!(listed["tasks"][0]["name"], task.as_str());
    let (_, activity) = rest.get(&format!("/v1/{task}/activity")).await;
    assert!(
        activity["activities"]
            .as_array()
            .is_some_and(|a| a.len() >= 3),
        "{activity}"
    );
    let (status, missing) = rest
        .get(&format!(
            "/v1/{project}/tasks/{}",
            uuid::Uuid::now_v7().simple()
        ))
        .await;
    assert_eq!(status, 404, "{missing}");
    task
}

/// gRPC through the gateway, with grpcurl and reflection.
fn grpcurl_reads(stack: &Stack, grpc_port: u16, token: &str, task: &str) {
    let grpcurl = stack.bin("grpcurl");
    let target = format!("127.0.0.1:{grpc_port}");
    let listed = Command::new(&grpcurl)
        .args(["-plaintext", &target, "list"])
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
            &target,
            "taskmesh.tasks.v1.TaskService/GetTask",
        ])
        .output()
        .expect("grpcurl call");
    assert!(String::from_utf8_lossy(&fetched.stdout).contains("STATUS_DONE"));
}

/// Clients generated from the contracts alone, in other languages, each run against the platform
/// with the user's token: `tests/clients/python/smoke.py` (grpcio-tools stubs, native gRPC through
/// the gateway) and `tests/clients/typescript/smoke.sh` (protoc-gen-es and connect-web, grpc-web
/// through the gateway's REST port, as a browser would).
fn generated_clients_call(stack: &Stack, platform: &Platform, token: &str) {
    let cwd = std::env::current_dir().expect("cwd");
    let root = cwd
        .ancestors()
        .find(|dir| dir.join("buf.yaml").is_file())
        .expect("the repository root");
    let mut python = Command::new(stack.bin("python"));
    python
        .arg(root.join("tests/clients/python/smoke.py"))
        .arg(root)
        .arg(format!("127.0.0.1:{}", platform.grpc_port))
        .arg(token);
    let mut typescript = Command::new("bash");
    typescript
        .arg(root.join("tests/clients/typescript/smoke.sh"))
        .arg(&platform.base)
        .arg(token);
    for (language, mut command) in [("Python", python), ("TypeScript", typescript)] {
        let output = command.output().expect("run the client");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{language}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("without a token: UNAUTHENTICATED"),
            "{language}: {stdout}"
        );
        assert!(
            stdout.contains("GetCurrentUser: users/ada"),
            "{language}: {stdout}"
        );
        assert!(
            stdout.contains("CreateProject, GetProject, ListProjects"),
            "{language}: {stdout}"
        );
    }
}

/// A task with a job: the execution service runs it; its progress streams through the gateway as
/// NDJSON and as Server-Sent Events, and the task shows the outcome.
async fn job_runs_and_streams(rest: &Rest, token: &str, project: &str, columns: &Value) {
    let jobs_server = job_target().await;
    let (status, job_task) = rest
        .post(
            &format!("/v1/{project}/tasks"),
            json!({
                "title": "Crawl",
                "column": column(columns, "COLUMN_KIND_TODO"),
                "job": {"webCrawl": {"url": format!("http://{jobs_server}/page"), "query": "mesh"}}
            }),
        )
        .await;
    assert_eq!(status, 200, "{job_task}");
    let job_task = job_task["name"].as_str().expect("task").to_owned();
    let execution = poll("the execution created from the task event", || async {
        let (_, listed) = rest.get(&format!("/v1/{job_task}/executions")).await;
        listed["executions"][0]["name"].as_str().map(str::to_owned)
    })
    .await;
    let watch = |accept: &'static str| {
        rest.client
            .get(rest.url(&format!("/v1/{execution}:watch")))
            .bearer_auth(token)
            .header("accept", accept)
            .send()
    };
    let ndjson = watch("application/json")
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
    let sse = watch("text/event-stream")
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
    let job_status = poll("the task showing its job's outcome", || async {
        let (_, fetched) = rest.get(&format!("/v1/{job_task}")).await;
        (fetched["jobStatus"]["state"] == "JOB_STATE_SUCCEEDED")
            .then(|| fetched["jobStatus"].clone())
    })
    .await;
    assert_eq!(job_status["execution"], execution.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_works_end_to_end_through_the_gateway() {
    let stack = Stack::load();
    let mut platform = Platform::start(&stack).await;
    let mut rest = Rest::new(&platform.base);

    let credentials = sign_up(&mut rest).await;
    let (project, columns) = project_with_board(&rest).await;
    let task = task_lifecycle(&rest, &project, &columns).await;
    grpcurl_reads(&stack, platform.grpc_port, &credentials.access_token, &task);
    generated_clients_call(&stack, &platform, &credentials.access_token);
    job_runs_and_streams(&rest, &credentials.access_token, &project, &columns).await;
    platform.stop();

    // The logs of the whole flow hold no credential.
    let signing_keys: Value = vaultrs::kv2::read(
        &stack.vault(),
        "secret",
        &format!("{}/signing-keys", platform.identity_secrets),
    )
    .await
    .expect("signing keys");
    let [first_refresh, second_refresh] = &credentials.refresh_tokens;
    let secrets = [
        ("password", PASSWORD),
        ("access token", credentials.access_token.as_str()),
        ("refresh token", first_refresh.as_str()),
        ("rotated refresh token", second_refresh.as_str()),
        ("API key secret", credentials.api_key.as_str()),
        (
            "signing key",
            signing_keys["keys"][0]["private_key"]
                .as_str()
                .expect("private key"),
        ),
    ];
    let mut scanned = 0;
    for (path, text) in platform.logs() {
        assert!(!text.is_empty(), "{} is empty", path.display());
        scanned += text.lines().count();
        for (what, secret) in secrets {
            assert!(
                !text.contains(secret),
                "the {what} appears in {}",
                path.display()
            );
        }
    }
    assert!(scanned > 50, "the flow logged {scanned} lines");
    platform.clean_up();
}
