//! Email over SMTP with `lettre`. Where the server is and how to log in to it is read from Vault
//! (`<secret_path>/smtp`) at start-up. Each email carries the Message-ID fixed when it was queued
//! (a resend after a crash is recognisably the same message), text and HTML bodies, and a
//! `List-Unsubscribe` header pointing at the user's settings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::{Mutex, Notify, watch};

use super::{backoff, nap};
use crate::config::{self, Email};
use crate::error::Error;
use crate::store::Store;
use crate::store::outgoing::DueEmail;

/// The SMTP server and login, as stored in Vault.
#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSecret {
    /// Host name.
    pub host: String,
    /// Port (25, 465, 587, or a development server's); a number or its text (`bao kv put` writes
    /// text).
    #[serde(deserialize_with = "port")]
    pub port: u16,
    /// Login, if the server wants one.
    #[serde(default)]
    pub username: String,
    /// Password of the login.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// `none` (plain, for a local development server), `starttls` or `tls`.
    #[serde(default = "starttls")]
    pub tls: String,
    /// The sender, `taskmesh <notifications@example.com>`.
    pub from: String,
}

fn port<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Text(String),
    }
    match Port::deserialize(deserializer)? {
        Port::Number(port) => Ok(port),
        Port::Text(text) => text
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("port `{text}` is not a port number"))),
    }
}

fn starttls() -> String {
    "starttls".to_owned()
}

/// How long connecting, or one exchange with the server, may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection unused for longer is checked (NOOP) before it carries a message: servers close
/// idle ones.
const IDLE_CHECK: Duration = Duration::from_secs(10);

/// How emails are sent through one SMTP server: over `connections` connections at a time, each
/// kept open between messages (`lanes` of the mail loop).
#[derive(Clone)]
pub struct Mailer {
    server: Arc<Server>,
    lanes: Arc<Vec<Mutex<Lane>>>,
    from: Mailbox,
    public_url: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .field("lanes", &self.lanes.len())
            .finish_non_exhaustive()
    }
}

/// One connection of a [`Mailer`], made when first needed and again after a failure.
#[derive(Default)]
struct Lane {
    connection: Option<AsyncSmtpConnection>,
    last_used: Option<Instant>,
}

/// Where the SMTP server is and how to talk to it.
struct Server {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
}

enum Security {
    /// Plain text (a local development server).
    None,
    /// Upgraded with STARTTLS, which the server must offer.
    StartTls(TlsParameters),
    /// TLS from the first byte.
    Tls(TlsParameters),
}

impl Server {
    /// A new connection, logged in.
    async fn connect(&self) -> Result<AsyncSmtpConnection, String> {
        let smtp = |e: lettre::transport::smtp::Error| format!("smtp: {e}");
        let mut connection = match &self.security {
            Security::Tls(tls) => AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(SMTP_TIMEOUT),
                &self.hello,
                Some(tls.clone()),
                None,
            )
            .await
            .map_err(smtp)?,
            Security::None | Security::StartTls(_) => {
                let stream = tokio::time::timeout(
                    SMTP_TIMEOUT,
                    tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
                )
                .await
                .map_err(|_| "smtp: connecting timed out".to_owned())?
                .map_err(|e| format!("smtp: connecting: {e}"))?;
                // lettre writes a message's body and its closing dot in two writes; with Nagle's
                // algorithm the second waits for the server's delayed acknowledgement, 40 ms a
                // message. (lettre's own transport does not turn it off in 0.11.23.)
                stream.set_nodelay(true).map_err(|e| format!("smtp: {e}"))?;
                let mut connection =
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                        .await
                        .map_err(smtp)?;
                if let Security::StartTls(tls) = &self.security {
                    connection
                        .starttls(tls.clone(), &self.hello)
                        .await
                        .map_err(smtp)?;
                }
                connection
            }
        };
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(smtp)?;
        }
        Ok(connection)
    }
}

impl Mailer {
    /// A mailer for the server `secret` names, over `connections` connections at a time.
    pub fn new(secret: &SmtpSecret, public_url: &str, connections: usize) -> Result<Self, Error> {
        let tls =
            || TlsParameters::new(secret.host.clone()).map_err(|e| Error::Smtp(e.to_string()));
        let security = match secret.tls.as_str() {
            "none" => Security::None,
            "starttls" => Security::StartTls(tls()?),
            "tls" => Security::Tls(tls()?),
            other => {
                return Err(Error::Smtp(format!(
                    "tls is `{other}`; one of none, starttls, tls"
                )));
            }
        };
        let credentials = (!secret.username.is_empty()).then(|| {
            let password = secret
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
                .unwrap_or_default();
            Credentials::new(secret.username.clone(), password)
        });
        let from = secret
            .from
            .parse::<Mailbox>()
            .map_err(|e| Error::Smtp(format!("from `{}`: {e}", secret.from)))?;
        let server = Server {
            host: secret.host.clone(),
            port: secret.port,
            security,
            credentials,
            hello: ClientId::default(),
        };
        Ok(Self {
            server: Arc::new(server),
            lanes: Arc::new((0..connections.max(1)).map(|_| Mutex::default()).collect()),
            from,
            public_url: public_url.to_owned(),
        })
    }

    /// How many emails go out at a time.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Sends one email over connection `lane`.
    async fn send(&self, email: &DueEmail, lane: usize) -> Result<(), String> {
        let to = email
            .to_address
            .parse::<Mailbox>()
            .map_err(|e| format!("address: {e}"))?;
        let unsubscribe = format!(
            "<{}>",
            crate::domain::render::settings_url(
                &self.public_url,
                &format!("users/{}", email.user_id)
            )
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(email.message_id.clone()))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                unsubscribe,
            ))
            .multipart(MultiPart::alternative_plain_html(
                email.text_body.clone(),
                email.html_body.clone(),
            ))
            .map_err(|e| format!("message: {e}"))?;
        let envelope = message.envelope().clone();
        let bytes = message.formatted();
        let mut lane = self.lanes[lane % self.lanes.len()].lock().await;
        let idle = lane.last_used.is_none_or(|at| at.elapsed() > IDLE_CHECK);
        let mut connection = match lane.connection.take() {
            Some(mut connection) if !connection.has_broken() => {
                if idle && !connection.test_connected().await {
                    self.server.connect().await?
                } else {
                    connection
                }
            }
            _ => self.server.connect().await?,
        };
        let sent = tokio::time::timeout(SMTP_TIMEOUT, connection.send(&envelope, &bytes)).await;
        lane.last_used = Some(Instant::now());
        match sent {
            Ok(Ok(_)) => {
                lane.connection = Some(connection);
                Ok(())
            }
            Ok(Err(e)) => {
                connection.abort().await;
                Err(format!("smtp: {e}"))
            }
            Err(_) => Err("smtp: the server did not answer in time".to_owned()),
        }
    }
}

/// Sends due emails until stopped.
pub async fn run(
    store: Store,
    mailer: Mailer,
    settings: Email,
    wake: std::sync::Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let lease = config::millis(settings.lease_ms);
    let poll = config::millis(settings.poll_ms);
    loop {
        if *stop.borrow() {
            return;
        }
        match store.claim_emails(settings.batch, lease).await {
            Ok(due) if !due.is_empty() => {
                let full = due.len() >= settings.batch as usize;
                // Each connection takes every `lanes`-th email; they go out side by side.
                let lanes = mailer.lanes();
                let (store, mailer, settings, due) = (&store, &mailer, &settings, &due);
                futures::future::join_all((0..lanes).map(|lane| async move {
                    for email in due.iter().skip(lane).step_by(lanes) {
                        settle(store, mailer, settings, email, lane).await;
                    }
                }))
                .await;
                if full {
                    continue;
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "cannot claim emails"),
        }
        let next = store.next_email_time().await.ok().flatten();
        if !nap(&wake, next, poll, &mut stop).await {
            return;
        }
    }
}

async fn settle(store: &Store, mailer: &Mailer, settings: &Email, email: &DueEmail, lane: usize) {
    let outcome = mailer.send(email, lane).await;
    let result = match &outcome {
        Ok(()) => store.settle_email(&email.notification_id, None, None).await,
        Err(error) => {
            let retry_at = (email.attempts < settings.max_attempts).then(|| {
                let delay = backoff(
                    Duration::from_secs(5),
                    config::millis(settings.max_backoff_ms),
                    email.attempts,
                );
                Utc::now() + TimeDelta::from_std(delay).unwrap_or(TimeDelta::minutes(1))
            });
            tracing::warn!(notification = %email.notification_id, attempt = email.attempts, %error, gives_up = retry_at.is_none(), "email not sent");
            store
                .settle_email(&email.notification_id, Some(error), retry_at)
                .await
        }
    };
    if let Err(err) = result {
        // Sent but not recorded: the lease ends and it is sent again, with the same Message-ID.
        tracing::warn!(notification = %email.notification_id, error = %err, "cannot record the email's outcome");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_may_be_a_number_or_its_text() {
        for secret in [
            serde_json::json!({"host": "h", "port": 2525, "from": "a@b.c"}),
            serde_json::json!({"host": "h", "port": "2525", "from": "a@b.c"}),
        ] {
            let parsed: SmtpSecret = serde_json::from_value(secret).expect("a secret");
            assert_eq!(parsed.port, 2525);
            assert_eq!(parsed.tls, "starttls");
        }
        let bad = serde_json::json!({"host": "h", "port": "smtp", "from": "a@b.c"});
        assert!(serde_json::from_value::<SmtpSecret>(bad).is_err());
    }
}
