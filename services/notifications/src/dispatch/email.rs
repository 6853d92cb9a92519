//! Email over SMTP with `lettre`. Where the server is and how to log in to it is read from Vault
//! (`<secret_path>/smtp`) at start-up. Each email carries the Message-ID fixed when it was queued
//! (a resend after a crash is recognisably the same message), text and HTML bodies, and a
//! `List-Unsubscribe` header pointing at the user's settings.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::{Notify, watch};

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

/// Sends emails through one SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for the server `secret` names.
    pub fn new(secret: &SmtpSecret, public_url: &str) -> Result<Self, Error> {
        let builder = match secret.tls.as_str() {
            "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&secret.host),
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&secret.host)
                .map_err(|e| Error::Smtp(e.to_string()))?,
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&secret.host)
                .map_err(|e| Error::Smtp(e.to_string()))?,
            other => {
                return Err(Error::Smtp(format!(
                    "tls is `{other}`; one of none, starttls, tls"
                )));
            }
        };
        let mut builder = builder
            .port(secret.port)
            .timeout(Some(Duration::from_secs(30)));
        if !secret.username.is_empty() {
            let password = secret
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(secret.username.clone(), password));
        }
        let from = secret
            .from
            .parse::<Mailbox>()
            .map_err(|e| Error::Smtp(format!("from `{}`: {e}", secret.from)))?;
        Ok(Self {
            transport: builder.build(),
            from,
            public_url: public_url.to_owned(),
        })
    }

    /// Sends one email.
    async fn send(&self, email: &DueEmail) -> Result<(), String> {
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
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("smtp: {e}"))
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
                for email in &due {
                    settle(&store, &mailer, &settings, email).await;
                }
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

async fn settle(store: &Store, mailer: &Mailer, settings: &Email, email: &DueEmail) {
    let outcome = mailer.send(email).await;
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
