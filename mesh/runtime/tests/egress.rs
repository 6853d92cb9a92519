//! The egress policy against real sockets: inside addresses in every spelling, redirect chains,
//! allow-listed servers, byte caps and timeouts. Every server here listens on the loopback address
//! and counts the connections it got, so a refusal is shown to have happened before any byte left.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use taskmesh_mesh::egress::{Egress, EgressConfig, EgressError, EgressRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A loopback HTTP server: `/redirect?to=URL` answers 302 to URL, `/big` 10 000 bytes, `/slow`
/// never answers, anything else 200 `hello` with a cookie.
struct Server {
    port: u16,
    hits: Arc<AtomicUsize>,
}

async fn server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buffer = vec![0_u8; 8192];
                let n = socket.read(&mut buffer).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buffer[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response = if let Some(to) = path.strip_prefix("/redirect?to=") {
                    format!(
                        "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    )
                } else if path == "/big" {
                    let body = "x".repeat(10_000);
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else if path == "/slow" {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    String::new()
                } else {
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nset-cookie: session=secret\r\nserver: internal/1.0\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello".to_owned()
                };
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Server { port, hits }
}

fn egress(config: &EgressConfig) -> Egress {
    Egress::new(config, "taskmesh-test").expect("egress")
}

fn get(url: String) -> EgressRequest {
    EgressRequest {
        url,
        ..Default::default()
    }
}

#[tokio::test]
async fn inside_addresses_are_refused_in_every_spelling() {
    let target = server().await;
    let port = target.port;
    // The port is allowed, so only the address can refuse these.
    let egress = egress(&EgressConfig {
        allow_ports: vec![port],
        ..EgressConfig::default()
    });
    let spellings = [
        "127.0.0.1",
        "127.1",
        "127.0.1",
        "2130706433",
        "0x7f000001",
        "0x7F.0x0.0x0.0x1",
        "0177.0.0.1",
        "017700000001",
        "0x7f.1",
        "127.000.000.001",
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[0:0:0:0:0:ffff:7f00:1]",
        "[::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "0.0.0.0",
        "0",
        "localhost",
        "LOCALHOST",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0xa9fea9fe",
        "100.64.0.1",
        "[fd00:ec2::254]",
        "[fe80::1]",
        "224.0.0.1",
        "[ff02::1]",
        "255.255.255.255",
    ];
    assert!(spellings.len() >= 20);
    for host in spellings {
        let url = format!("http://{host}:{port}/");
        match egress.send(&get(url.clone())).await {
            Err(EgressError::Refused(_)) => {}
            other => panic!("{url}: {other:?}"),
        }
    }
    assert_eq!(
        target.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the server"
    );
}

#[tokio::test]
async fn schemes_and_ports_outside_the_policy_are_refused() {
    let egress = egress(&EgressConfig::default());
    for url in [
        "file:///etc/passwd",
        "ftp://127.0.0.1/",
        "gopher://127.0.0.1:70/",
        "http://93.184.216.34:22/",
        "https://93.184.216.34:8443/",
        "http://93.184.216.34:6379/",
    ] {
        match egress.send(&get(url.to_owned())).await {
            Err(EgressError::Refused(_)) => {}
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn every_redirect_is_checked_and_an_allowed_chain_works() {
    let allowed = server().await;
    let other = server().await;
    let port = allowed.port;
    let egress = egress(&EgressConfig {
        allow_ports: vec![port],
        allow_networks: vec!["127.0.0.1/32".to_owned()],
        max_redirects: 3,
        ..EgressConfig::default()
    });
    let base = format!("http://127.0.0.1:{port}");

    // The allow-listed server itself is reachable, through redirects that stay allowed too.
    let response = egress
        .send(&get(format!(
            "{base}/redirect?to={base}/redirect?to={base}/ok"
        )))
        .await
        .expect("allowed chain");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello");
    assert_eq!(
        response.headers,
        vec![
            ("content-type".to_owned(), "text/plain".to_owned()),
            ("content-length".to_owned(), "5".to_owned())
        ],
        "cookies and server details are not kept"
    );

    for target in [
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://127.0.0.2:{}/", other.port),
        format!("http://127.0.0.2:{port}/"),
        format!("http://2130706434:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:10.0.0.1]:{port}/"),
        // A second hop that leaves the allow-list.
        format!("{base}/redirect?to=http://192.168.0.1:{port}/"),
    ] {
        let url = format!("{base}/redirect?to={target}");
        match egress.send(&get(url.clone())).await {
            Err(EgressError::Refused(_)) => {}
            other => panic!("{url}: {other:?}"),
        }
    }
    assert_eq!(other.hits.load(Ordering::SeqCst), 0);

    // An allow-listed address is trusted on every port.
    let other_port = egress
        .send(&get(format!(
            "{base}/redirect?to=http://127.0.0.1:{}/ok",
            other.port
        )))
        .await
        .expect("allowed network, other port");
    assert_eq!(other_port.status, 200);
    assert_eq!(other.hits.load(Ordering::SeqCst), 1);

    // A redirect to another scheme is not followed: the 302 itself is the answer.
    let not_followed = egress
        .send(&get(format!("{base}/redirect?to=file:///etc/passwd")))
        .await
        .expect("answered");
    assert_eq!(not_followed.status, 302);
    assert!(not_followed.body.is_empty());

    // A chain longer than allowed.
    let mut url = format!("{base}/ok");
    for _ in 0..5 {
        url = format!("{base}/redirect?to={url}");
    }
    match egress.send(&get(url)).await {
        Err(EgressError::Refused(reason)) | Err(EgressError::Transport(reason)) => {
            assert!(reason.contains("redirects"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bodies_are_capped_and_silence_times_out() {
    let target = server().await;
    let port = target.port;
    let egress = egress(&EgressConfig {
        allow_ports: vec![port],
        allow_networks: vec!["127.0.0.1".to_owned()],
        max_response_bytes: 1024,
        first_byte_timeout_ms: 300,
        ..EgressConfig::default()
    });
    let big = egress
        .send(&get(format!("http://127.0.0.1:{port}/big")))
        .await
        .expect("big");
    assert_eq!(big.body.len(), 1024);
    assert!(big.truncated);

    let started = std::time::Instant::now();
    match egress
        .send(&get(format!("http://127.0.0.1:{port}/slow")))
        .await
    {
        Err(EgressError::Timeout(_)) => {}
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_malformed_allow_list_names_its_key() {
    let err = Egress::new(
        &EgressConfig {
            allow_networks: vec!["not-a-network".to_owned()],
            ..EgressConfig::default()
        },
        "taskmesh-test",
    )
    .expect_err("refused");
    assert!(err.to_string().contains("egress.allow_networks"), "{err}");
}
