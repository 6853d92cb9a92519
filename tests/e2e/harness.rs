//! The platform as `make up` wires it, started from the built binaries: every service with its own
//! database, AppRole and Vault secrets on a private NATS server, the identity signing key
//! provisioned, and the gateway in front. Plus a REST client and a target for crawl jobs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use taskmesh_testing::identity::workspace_binary;
use taskmesh_testing::{NatsServer, SmtpServer, Stack, TestDatabase, free_port, wait_ready};

pub(crate) use crate::rest::Rest;

/// Settings for every service that lift the per-parent limits (projects, boards, columns, tasks),
/// for tests that create a lot.
pub(crate) fn roomy_limits() -> Vec<(&'static str, String)> {
    [
        "TASKMESH_LIMITS__MAX_PROJECTS_PER_ORGANIZATION",
        "TASKMESH_LIMITS__MAX_BOARDS_PER_PROJECT",
        "TASKMESH_LIMITS__MAX_COLUMNS_PER_BOARD",
        "TASKMESH_LIMITS__MAX_TASKS_PER_BOARD",
    ]
    .into_iter()
    .map(|key| (key, "1000000".to_owned()))
    .collect()
}

/// Gateway settings that lift its rate limits, for tests that call a lot from one address.
pub(crate) const ROOMY_RATE_LIMITS: &str = "[rate_limits]\nsign_in_per_minute = 1000000\nsign_in_burst = 100000\nuser_per_second = 1000000\nuser_burst = 1000000\n";

/// A service process, killed when dropped.
struct Process {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
    envs: Vec<(String, String)>,
    args: Vec<String>,
    dir: PathBuf,
    starts: usize,
}

impl Process {
    fn start(name: &'static str, envs: &[(&str, String)], args: &[&str], dir: &Path) -> Self {
        let mut process = Self {
            name,
            child: None,
            log: PathBuf::new(),
            envs: envs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            dir: dir.to_owned(),
            starts: 0,
        };
        process.spawn();
        process
    }

    /// Starts the process (again), logging to `<name>.log`, then `<name>.2.log`, ...
    fn spawn(&mut self) {
        self.starts += 1;
        let name = self.name;
        let log = if self.starts == 1 {
            self.dir.join(format!("{name}.log"))
        } else {
            self.dir.join(format!("{name}.{}.log", self.starts))
        };
        let mut command = Command::new(workspace_binary(name));
        for (key, _) in std::env::vars() {
            if key.starts_with("TASKMESH_") || key.starts_with("VAULT_") {
                command.env_remove(key);
            }
        }
        let child = command
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn");
        self.child = Some(child);
        self.log = log;
    }

    /// SIGKILL: no drain, nothing flushed.
    fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
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

/// One service's settings: only the Vault address and AppRole files, as `make up` gives them.
struct ServiceEnv {
    env: Vec<(&'static str, String)>,
    grpc: u16,
    admin: u16,
    /// Where its secrets are in Vault.
    secret_path: String,
    /// Its database.
    db: TestDatabase,
}

impl ServiceEnv {
    async fn new(
        stack: &Stack,
        nats: &NatsServer,
        name: &str,
        prefix: &str,
        dir: &Path,
        sealing_key: &str,
    ) -> Self {
        let db = TestDatabase::create(stack, prefix).await;
        // Its NATS login, where provisioning puts it for `make up`.
        vaultrs::kv2::set(
            &stack.vault(),
            "secret",
            &format!("{}/nats", db.secret_path),
            &serde_json::json!({ "username": name, "password": nats.password(name) }),
        )
        .await
        .expect("write the NATS login to vault");
        // One sealing key for the platform: tasks seals jobs' secrets, execution opens them.
        db.store_sealing_key(stack, sealing_key).await;
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
        Self {
            env,
            grpc,
            admin,
            secret_path: db.secret_path.clone(),
            db,
        }
    }
}

/// What every service of a platform shares: the stack, the broker, the mail server, the key that
/// seals jobs' secrets, and the directory of logs and credentials.
struct Shared<'a> {
    stack: &'a Stack,
    nats: &'a NatsServer,
    smtp: &'a SmtpServer,
    sealing_key: &'a str,
    dir: &'a Path,
}

/// Starts `name` with `settings`, then the ones of `own` that name it, on top of its own database
/// and AppRole; waits until ready.
async fn start_service(
    shared: &Shared<'_>,
    name: &'static str,
    settings: &[(&'static str, String)],
    own: &[(&'static str, &'static str, String)],
) -> (ServiceEnv, Process) {
    let Shared {
        stack,
        nats,
        smtp,
        sealing_key,
        dir,
    } = *shared;
    let mut service =
        ServiceEnv::new(stack, nats, name, &format!("e2e_{name}"), dir, sealing_key).await;
    if name == "identity" {
        taskmesh_testing::identity::provision_key(stack, &service.secret_path).await;
    }
    if name == "notifications" {
        // Where provisioning points it for `make up` (maildev there, a real SMTP server here).
        service
            .db
            .store_secret(
                stack,
                "smtp",
                &serde_json::json!({
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "tls": "none",
                    "from": "taskmesh <notifications@taskmesh.test>",
                }),
            )
            .await;
    }
    service.env.extend_from_slice(settings);
    service.env.extend(
        own.iter()
            .filter(|(service, _, _)| *service == name)
            .map(|(_, key, value)| (*key, value.clone())),
    );
    let process = Process::start(name, &service.env, &[], dir);
    wait_ready(service.admin).await;
    (service, process)
}

/// Every service and the gateway, running.
pub(crate) struct Platform {
    /// Where the logs (`<name>.log`) and credential files are.
    pub(crate) dir: PathBuf,
    /// The gateway's REST base URL.
    pub(crate) base: String,
    /// The gateway's native gRPC port.
    pub(crate) grpc_port: u16,
    /// Vault path of identity's secrets (the signing keys are under it).
    pub(crate) identity_secrets: String,
    /// In stop order: gateway, bookings, marketplace, notes, notifications, scheduler, execution, tasks, projects, identity.
    /// Killed when dropped.
    processes: Vec<Process>,
    /// Admin ports of the services, by name.
    admin_ports: Vec<(&'static str, u16)>,
    /// gRPC ports of the services, by name.
    grpc_ports: Vec<(&'static str, u16)>,
    /// The services' databases, by name.
    databases: Vec<(&'static str, TestDatabase)>,
    nats: NatsServer,
    /// The SMTP server the notifications service sends to.
    pub(crate) smtp: SmtpServer,
}

impl Platform {
    pub(crate) async fn start(stack: &Stack) -> Self {
        // The job target of the flow listens on the loopback address, which the egress policy
        // refuses unless allow-listed.
        let trusted = [(
            "TASKMESH_EGRESS__ALLOW_NETWORKS",
            "[\"127.0.0.1/32\"]".to_owned(),
        )];
        Self::start_with(stack, &trusted, "").await
    }

    /// Like [`start`](Self::start), with `settings` added to every service's environment and
    /// `gateway_toml` to the gateway's configuration.
    pub(crate) async fn start_with(
        stack: &Stack,
        settings: &[(&'static str, String)],
        gateway_toml: &str,
    ) -> Self {
        Self::start_custom(stack, settings, &[], gateway_toml).await
    }

    /// Like [`start_with`](Self::start_with), with `(service, key, value)` settings for single
    /// services on top (`("execution", "TASKMESH_DATABASE__PORT", ..)`).
    pub(crate) async fn start_custom(
        stack: &Stack,
        settings: &[(&'static str, String)],
        own: &[(&'static str, &'static str, String)],
        gateway_toml: &str,
    ) -> Self {
        // A private NATS: durable consumers are shared by name, so a `make up` running beside the
        // tests must not take this platform's messages. Its clients log in as on the local stack,
        // each service as its own user with its own permissions.
        let nats = NatsServer::start_with_users(stack).await;
        let dir =
            std::env::temp_dir().join(format!("taskmesh-e2e-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key = taskmesh_testing::random_sealing_key();
        let smtp = SmtpServer::start(stack).await;
        let shared = Shared {
            stack,
            nats: &nats,
            smtp: &smtp,
            sealing_key: &key,
            dir: &dir,
        };

        let (identity, identity_process) = start_service(&shared, "identity", settings, own).await;
        let identity_endpoint = format!("http://127.0.0.1:{}", identity.grpc);
        let verify = (
            "TASKMESH_AUTH__IDENTITY_ENDPOINT",
            identity_endpoint.clone(),
        );
        let with = |extra: &[(&'static str, String)]| {
            let mut all = settings.to_vec();
            all.extend_from_slice(extra);
            all
        };
        let (projects, projects_process) = start_service(
            &shared,
            "projects",
            &with(std::slice::from_ref(&verify)),
            own,
        )
        .await;
        let uses_projects = [
            verify,
            (
                "TASKMESH_PROJECTS__ENDPOINT",
                format!("http://127.0.0.1:{}", projects.grpc),
            ),
        ];
        let (tasks, tasks_process) =
            start_service(&shared, "tasks", &with(&uses_projects), own).await;
        let (execution, execution_process) =
            start_service(&shared, "execution", &with(&uses_projects), own).await;

        let (scheduler, scheduler_process) =
            start_service(&shared, "scheduler", &with(&uses_projects), own).await;

        let (notifications, notifications_process) =
            start_service(&shared, "notifications", &with(&uses_projects), own).await;

        let mut uses_tasks = uses_projects.to_vec();
        uses_tasks.push((
            "TASKMESH_TASKS__ENDPOINT",
            format!("http://127.0.0.1:{}", tasks.grpc),
        ));
        let (notes, notes_process) = start_service(&shared, "notes", &with(&uses_tasks), own).await;
        let (marketplace, marketplace_process) =
            start_service(&shared, "marketplace", &with(&uses_projects[..1]), own).await;
        let uses_marketplace = [
            uses_projects[0].clone(),
            (
                "TASKMESH_MARKETPLACE__ENDPOINT",
                format!("http://127.0.0.1:{}", marketplace.grpc),
            ),
        ];
        let (bookings, bookings_process) =
            start_service(&shared, "bookings", &with(&uses_marketplace), own).await;

        let (http, grpc_port, admin) = (free_port(), free_port(), free_port());
        let upstream = |context: &str, port: u16, timeout_ms: u32| {
            format!(
                "[[upstreams]]\nprefix = \"taskmesh.{context}\"\nendpoint = \"http://127.0.0.1:{port}\"\ntimeout_ms = {timeout_ms}\n\n"
            )
        };
        let config = dir.join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "http_listen = \"127.0.0.1:{http}\"\ngrpc_listen = \"127.0.0.1:{grpc_port}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\n\
                 [auth]\nidentity_endpoint = \"{identity_endpoint}\"\n\n{gateway_toml}\n{}{}{}{}{}{}{}{}{}",
                upstream("identity", identity.grpc, 10_000),
                upstream("projects", projects.grpc, 10_000),
                upstream("tasks", tasks.grpc, 10_000),
                upstream("execution", execution.grpc, 60_000),
                upstream("scheduler", scheduler.grpc, 10_000),
                upstream("notifications", notifications.grpc, 10_000),
                upstream("notes", notes.grpc, 10_000),
                upstream("marketplace", marketplace.grpc, 10_000),
                upstream("bookings", bookings.grpc, 10_000),
            ),
        )
        .expect("gateway config");
        let config_arg = config.display().to_string();
        let gateway = Process::start("gateway", &[], &["--config", &config_arg], &dir);
        wait_ready(admin).await;

        Self {
            base: format!("http://127.0.0.1:{http}"),
            grpc_port,
            identity_secrets: identity.secret_path,
            processes: vec![
                gateway,
                bookings_process,
                marketplace_process,
                notes_process,
                notifications_process,
                scheduler_process,
                execution_process,
                tasks_process,
                projects_process,
                identity_process,
            ],
            grpc_ports: vec![
                ("identity", identity.grpc),
                ("projects", projects.grpc),
                ("tasks", tasks.grpc),
                ("execution", execution.grpc),
                ("scheduler", scheduler.grpc),
                ("notifications", notifications.grpc),
                ("notes", notes.grpc),
                ("marketplace", marketplace.grpc),
                ("bookings", bookings.grpc),
            ],
            admin_ports: vec![
                ("identity", identity.admin),
                ("projects", projects.admin),
                ("tasks", tasks.admin),
                ("execution", execution.admin),
                ("scheduler", scheduler.admin),
                ("notifications", notifications.admin),
                ("notes", notes.admin),
                ("marketplace", marketplace.admin),
                ("bookings", bookings.admin),
            ],
            databases: vec![
                ("identity", identity.db),
                ("projects", projects.db),
                ("tasks", tasks.db),
                ("execution", execution.db),
                ("scheduler", scheduler.db),
                ("notifications", notifications.db),
                ("notes", notes.db),
                ("marketplace", marketplace.db),
                ("bookings", bookings.db),
            ],
            dir,
            nats,
            smtp,
        }
    }

    /// Kills `service` with SIGKILL, starts it again with the same settings and waits until it
    /// is ready; returns when it was ready.
    pub(crate) async fn kill_and_restart(&mut self, service: &str) -> std::time::Instant {
        let process = self
            .processes
            .iter_mut()
            .find(|p| p.name == service)
            .expect("a service of the platform");
        process.kill();
        process.spawn();
        let admin = self
            .admin_ports
            .iter()
            .find(|(name, _)| *name == service)
            .map(|(_, port)| *port)
            .expect("its admin port");
        wait_ready(admin).await;
        std::time::Instant::now()
    }

    /// The gRPC endpoint of `service`, `http://127.0.0.1:{port}`.
    pub(crate) fn grpc_endpoint(&self, service: &str) -> String {
        let port = self
            .grpc_ports
            .iter()
            .find(|(name, _)| *name == service)
            .map(|(_, port)| *port)
            .expect("a service of the platform");
        format!("http://127.0.0.1:{port}")
    }

    /// The process id of `service`.
    pub(crate) fn pid(&self, service: &str) -> u32 {
        self.processes
            .iter()
            .find(|p| p.name == service)
            .and_then(|p| p.child.as_ref())
            .map(std::process::Child::id)
            .expect("a running service of the platform")
    }

    /// The platform's (private) NATS server, with the operator's login.
    pub(crate) fn nats_url(&self) -> String {
        self.nats.url_as("operator")
    }

    /// The services' databases, by name.
    pub(crate) fn databases(&self) -> &[(&'static str, TestDatabase)] {
        &self.databases
    }

    /// The platform's NATS server, to log in as anyone.
    pub(crate) fn nats(&self) -> &NatsServer {
        &self.nats
    }

    /// Stops every process with SIGTERM; each must exit 0.
    pub(crate) fn stop(&mut self) {
        for process in &mut self.processes {
            let name = process.name;
            assert!(process.stop().success(), "{name} stops gracefully");
        }
    }

    /// Removes the logs and credential files (kept when a test fails, for reading).
    pub(crate) fn clean_up(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Every process log with its path.
    pub(crate) fn logs(&self) -> Vec<(PathBuf, String)> {
        std::fs::read_dir(&self.dir)
            .expect("log dir")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "log"))
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("log");
                (path, text)
            })
            .collect()
    }
}

/// Asks `check` every 100 ms, up to 10 s, until it returns something.
pub(crate) async fn poll<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..100 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 10 s");
}
