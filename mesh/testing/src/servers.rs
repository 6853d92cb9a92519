//! Servers a test runs for itself: a private NATS (optionally with the local stack's users), a real
//! SMTP server that keeps what it receives, and a TCP proxy that can cut what is behind it and
//! counts what is sent through.

use std::path::PathBuf;

use crate::{Stack, free_port, workspace_root};

/// A private `nats-server` with JetStream for one test: its own port and store directory, so
/// streams and durable consumers are not shared with other tests. It can be stopped and started
/// again on the same port and store (an outage).
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    /// The authorization file when clients must log in ([`start_with_users`](Self::start_with_users)).
    auth: Option<PathBuf>,
    child: Option<std::process::Child>,
}

impl NatsServer {
    /// Starts a server from the stack's venv on a free port and waits until it accepts clients.
    pub async fn start(stack: &Stack) -> Self {
        let mut server = Self::new(stack);
        server.resume().await;
        server
    }

    /// Like [`start`](Self::start), but clients must log in, as on the local stack: one user per
    /// service with the permissions `deploy/local/nats-auth.sh` gives it, and `operator`. The
    /// passwords are random; [`password`](Self::password) and [`url_as`](Self::url_as) tell them.
    pub async fn start_with_users(stack: &Stack) -> Self {
        let mut server = Self::new(stack);
        let passwords = server.dir.join("passwords");
        std::fs::create_dir_all(&passwords).expect("the passwords directory");
        for user in [
            "identity",
            "projects",
            "tasks",
            "execution",
            "scheduler",
            "notifications",
            "notes",
            "marketplace",
            "bookings",
            "operator",
        ] {
            let password = uuid::Uuid::new_v4().simple().to_string();
            std::fs::write(passwords.join(user), password).expect("write a NATS password");
        }
        let auth = server.dir.join("auth.conf");
        let root = workspace_root();
        let rendered = std::process::Command::new("bash")
            .arg(root.join("deploy/local/nats-auth.sh"))
            .arg(&auth)
            .arg(&passwords)
            .env("TASKMESH_VENV", stack.home.join("venv"))
            .output()
            .expect("run nats-auth.sh");
        assert!(
            rendered.status.success(),
            "nats-auth.sh failed: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        server.auth = Some(auth);
        server.resume().await;
        server
    }

    fn new(stack: &Stack) -> Self {
        Self {
            binary: stack.bin("nats-server"),
            port: free_port(),
            dir: std::env::temp_dir()
                .join(format!("taskmesh-nats-{}", uuid::Uuid::new_v4().simple())),
            auth: None,
            child: None,
        }
    }

    /// `nats://127.0.0.1:<port>`, without a login.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The password of `user` on a server started [`with users`](Self::start_with_users).
    pub fn password(&self, user: &str) -> String {
        std::fs::read_to_string(self.dir.join("passwords").join(user))
            .unwrap_or_else(|e| panic!("no NATS password for {user} ({e})"))
    }

    /// `nats://<user>:<password>@127.0.0.1:<port>`.
    pub fn url_as(&self, user: &str) -> String {
        format!(
            "nats://{user}:{}@127.0.0.1:{}",
            self.password(user),
            self.port
        )
    }

    /// Kills the server (SIGKILL): an outage.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store.
    pub async fn resume(&mut self) {
        self.stop();
        let mut command = std::process::Command::new(&self.binary);
        if let Some(auth) = &self.auth {
            command.arg("-c").arg(auth);
        }
        let child = command
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(log_file(&self.dir.join("nats.log")))
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("nats-server did not start on port {}", self.port);
    }
}

/// `path` opened for appending (a server's log), or nowhere when it cannot be.
fn log_file(path: &std::path::Path) -> std::process::Stdio {
    std::fs::create_dir_all(path.parent().unwrap_or(path)).ok();
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_or_else(|_| std::process::Stdio::null(), Into::into)
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP forwarder from a free local port to `127.0.0.1:<target>` that can be cut (every open
/// connection dropped, new ones closed as soon as they are accepted) and restored: an outage of
/// what is behind it (PostgreSQL, say) for one test only, while other tests keep using it. It
/// counts the bytes sent towards the target (what a client asks of a database).
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    cut: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free port and forwards to `target`.
    pub async fn start(target: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let cut = std::sync::Arc::new(tokio::sync::watch::Sender::new(false));
        let cuts = std::sync::Arc::clone(&cut);
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = std::sync::Arc::clone(&sent);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if *cuts.borrow() {
                    drop(client);
                    continue;
                }
                let mut cut = cuts.subscribe();
                let sent = std::sync::Arc::clone(&counted);
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let Ok(upstream) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    let (mut from_client, mut to_client) = client.split();
                    let (mut from_upstream, mut to_upstream) = upstream.into_split();
                    // Towards the target byte by byte counted; back as it comes.
                    let up = async {
                        let mut buffer = vec![0_u8; 16 * 1024];
                        loop {
                            match from_client.read(&mut buffer).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    sent.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                                    if to_upstream.write_all(&buffer[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to_upstream.shutdown().await;
                    };
                    let down = tokio::io::copy(&mut from_upstream, &mut to_client);
                    tokio::select! {
                        _ = async { tokio::join!(up, down) } => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self {
            port,
            cut,
            sent,
            accept,
        }
    }

    /// Bytes sent towards the target so far, over every connection.
    pub fn bytes_to_target(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The port to connect to instead of the target's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Drops every connection and refuses new ones until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A real SMTP server (aiosmtpd from the stack's venv) that stores every message it accepts in a
/// Maildir of its own, for tests to read back.
#[derive(Debug)]
pub struct SmtpServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

/// A message the SMTP server received.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The whole message as received.
    pub raw: String,
}

impl ReceivedMail {
    /// The first value of header `name` (case-insensitive), unfolded; empty when absent.
    pub fn header(&self, name: &str) -> String {
        let head = self
            .raw
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .split("\n\n")
            .next()
            .unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.lines() {
            let line = line.trim_end_matches('\r');
            match &mut value {
                Some(v) if line.starts_with([' ', '\t']) => {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                Some(_) => break,
                None => {
                    if let Some((key, rest)) = line.split_once(':')
                        && key.eq_ignore_ascii_case(name)
                    {
                        value = Some(rest.trim().to_owned());
                    }
                }
            }
        }
        value.unwrap_or_default()
    }
}

impl ReceivedMail {
    /// [`header`](Self::header) with RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`)
    /// decoded.
    pub fn text_header(&self, name: &str) -> String {
        let raw = self.header(name);
        let mut out = String::new();
        let mut rest = raw.as_str();
        while let Some(start) = rest.find("=?") {
            let Some(end) = rest[start + 2..].find("?=").map(|e| start + 2 + e) else {
                break;
            };
            let before = &rest[..start];
            if !before.trim().is_empty() {
                out.push_str(before);
            }
            let word = &rest[start + 2..end];
            let mut parts = word.splitn(3, '?');
            let (_charset, encoding, text) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let bytes = if encoding.eq_ignore_ascii_case("b") {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .unwrap_or_default()
            } else {
                let mut bytes = Vec::new();
                let mut chars = text.bytes();
                while let Some(c) = chars.next() {
                    match c {
                        b'_' => bytes.push(b' '),
                        b'=' => {
                            let hex: Vec<u8> = chars.by_ref().take(2).collect();
                            let hex = String::from_utf8_lossy(&hex).to_string();
                            bytes.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
                        }
                        c => bytes.push(c),
                    }
                }
                bytes
            };
            out.push_str(&String::from_utf8_lossy(&bytes));
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

impl SmtpServer {
    /// Starts a server on a free port and waits until it accepts connections.
    pub async fn start(stack: &Stack) -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("taskmesh-smtp-{}", uuid::Uuid::new_v4().simple()));
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(dir.join(sub)).expect("the Maildir");
        }
        let child = std::process::Command::new(stack.bin("python"))
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd (make infra installs it)");
        let server = Self {
            port,
            dir,
            child: Some(child),
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not accept connections on {port}");
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut found = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.dir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Ok(raw) = std::fs::read_to_string(entry.path()) {
                    found.push(ReceivedMail { raw });
                }
            }
        }
        found
    }

    /// Waits until at least `count` messages arrived (at most `timeout`) and returns them all.
    pub async fn wait_for(&self, count: usize, timeout: std::time::Duration) -> Vec<ReceivedMail> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count || std::time::Instant::now() > deadline {
                return messages;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
