//! The notifications service's own settings: how email and webhooks are delivered, when the daily
//! agenda is made, and where the projects service is (the runtime's settings come from the kit;
//! the SMTP server and its login come from Vault, see [`crate::dispatch::email::SmtpSecret`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskmesh_clients::projects::ProjectsEndpoint;
use taskmesh_mesh::config::ConfigError;
use taskmesh_mesh::egress::EgressConfig;

use crate::domain::clock::LocalTimeOfDay;

/// The service's configuration: the runtime's settings plus [`Settings`].
pub type Config = taskmesh_service::Config<crate::Notifications>;

/// How the mail loop sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Email {
    /// Longest sleep between two looks for due emails, in milliseconds (a new email wakes the loop
    /// of the process that wrote it at once).
    pub poll_ms: u64,
    /// Emails claimed at a time.
    pub batch: u32,
    /// Attempts before an email is given up.
    pub max_attempts: i32,
    /// How long a claimed email is this process's to send before another may take it, in
    /// milliseconds: longer than an SMTP exchange can take.
    pub lease_ms: u64,
    /// The longest wait between two attempts, in milliseconds.
    pub max_backoff_ms: u64,
    /// SMTP connections kept open, each sending one email at a time: at most this many emails
    /// are in flight (and so at most this many sent again after a crash).
    pub connections: usize,
}

impl Default for Email {
    fn default() -> Self {
        Self {
            poll_ms: 1000,
            batch: 50,
            max_attempts: 10,
            lease_ms: 60_000,
            max_backoff_ms: 600_000,
            connections: 4,
        }
    }
}

/// How the webhook loop delivers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Webhooks {
    /// Longest sleep between two looks for due deliveries, in milliseconds.
    pub poll_ms: u64,
    /// Deliveries claimed at a time.
    pub batch: u32,
    /// Attempts of one delivery before it is given up.
    pub max_attempts: i32,
    /// Delay before the second attempt, in milliseconds; it doubles (with jitter) after each.
    pub first_backoff_ms: u64,
    /// The longest wait between two attempts, in milliseconds.
    pub max_backoff_ms: u64,
    /// Failed deliveries in a row after which a webhook is turned off.
    pub disable_after_failures: i32,
    /// How long a claimed delivery is this process's, in milliseconds.
    pub lease_ms: u64,
    /// Webhooks of one project.
    pub max_per_project: i64,
    /// Where webhook requests may go (no redirects by default: a receiver answers itself).
    pub egress: EgressConfig,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self {
            poll_ms: 1000,
            batch: 50,
            max_attempts: 8,
            first_backoff_ms: 5_000,
            max_backoff_ms: 3_600_000,
            disable_after_failures: 10,
            lease_ms: 60_000,
            max_per_project: 20,
            egress: EgressConfig {
                max_redirects: 0,
                total_timeout_ms: 15_000,
                first_byte_timeout_ms: 10_000,
                max_response_bytes: 64 * 1024,
                ..EgressConfig::default()
            },
        }
    }
}

/// The daily agenda.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Agenda {
    /// When it is made, on each user's own clock, `HH:MM` or `HH:MM:SS`.
    pub local_time: String,
    /// How often the loop looks for users whose agenda is due, in milliseconds.
    pub poll_ms: u64,
}

impl Default for Agenda {
    fn default() -> Self {
        Self {
            local_time: "08:00".to_owned(),
            poll_ms: 15_000,
        }
    }
}

impl Agenda {
    /// The configured time of day (validated at start-up).
    pub fn time(&self) -> LocalTimeOfDay {
        LocalTimeOfDay::parse(&self.local_time).unwrap_or_default()
    }
}

/// The tables only the notifications service reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Email delivery.
    pub email: Email,
    /// Webhook delivery.
    pub webhooks: Webhooks,
    /// The daily agenda.
    pub agenda: Agenda,
    /// The URL users reach the platform at (links in emails, `List-Unsubscribe`), no trailing `/`.
    pub public_url: String,
    /// Open SubscribeNotifications streams of one user on one process.
    pub max_streams_per_user: usize,
    /// The projects service, which says who may see and change a project's webhooks.
    pub projects: ProjectsEndpoint,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            email: Email::default(),
            webhooks: Webhooks::default(),
            agenda: Agenda::default(),
            public_url: "http://localhost:8080".to_owned(),
            max_streams_per_user: 8,
            projects: ProjectsEndpoint::default(),
        }
    }
}

fn invalid(key: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.to_owned(),
    }
}

impl taskmesh_service::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        for (key, poll) in [
            ("email.poll_ms", self.email.poll_ms),
            ("webhooks.poll_ms", self.webhooks.poll_ms),
            ("agenda.poll_ms", self.agenda.poll_ms),
        ] {
            if poll == 0 || poll > 600_000 {
                return Err(invalid(key, "must be 1 to 600000"));
            }
        }
        for (key, batch) in [
            ("email.batch", self.email.batch),
            ("webhooks.batch", self.webhooks.batch),
        ] {
            if batch == 0 || batch > 1000 {
                return Err(invalid(key, "must be 1 to 1000"));
            }
        }
        if self.email.max_attempts < 1 {
            return Err(invalid("email.max_attempts", "must be positive"));
        }
        if self.webhooks.max_attempts < 1 {
            return Err(invalid("webhooks.max_attempts", "must be positive"));
        }
        if self.webhooks.disable_after_failures < 1 {
            return Err(invalid(
                "webhooks.disable_after_failures",
                "must be positive",
            ));
        }
        if self.email.connections == 0 || self.email.connections > 64 {
            return Err(invalid("email.connections", "must be between 1 and 64"));
        }
        if self.webhooks.max_per_project < 1 {
            return Err(invalid("webhooks.max_per_project", "must be positive"));
        }
        if self.max_streams_per_user == 0 {
            return Err(invalid("max_streams_per_user", "must be positive"));
        }
        if LocalTimeOfDay::parse(&self.agenda.local_time).is_none() {
            return Err(invalid("agenda.local_time", "must be HH:MM or HH:MM:SS"));
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://"))
            || self.public_url.ends_with('/')
        {
            return Err(invalid(
                "public_url",
                "must be an http(s) URL without a trailing slash",
            ));
        }
        self.webhooks.egress.validate()?;
        self.projects.validate()
    }
}

/// Milliseconds as a duration.
pub fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}
