//! What a notification looks like outside the app: an email (subject, text and HTML bodies, the
//! headers that make a resend recognisable and let the user opt out) and a webhook payload.

use chrono::{DateTime, SecondsFormat, Utc};
use taskmesh_contracts::notifications_v1::NotificationKind;

use super::kind_name;

/// The REST path of a resource name (`/v1/projects/p/tasks/t`); empty for none.
pub fn link(resource: &str) -> String {
    if resource.is_empty() {
        String::new()
    } else {
        format!("/v1/{resource}")
    }
}

/// The `Message-ID` of the email of notification `id`: the same for every attempt.
pub fn message_id(id: &str) -> String {
    format!("<{id}@notifications.taskmesh>")
}

/// The `webhook-id` of notification `id` on every webhook and every attempt.
pub fn webhook_message_id(id: &str) -> String {
    format!("msg_{id}")
}

/// A webhook payload's `type`: `task.assigned`, `member.role_changed`, `job.failed`.
pub fn event_type(kind: NotificationKind) -> String {
    let name = kind_name(kind).to_ascii_lowercase();
    match name.split_once('_') {
        Some((head, rest)) => format!("{head}.{rest}"),
        None => name,
    }
}

/// What an email and a webhook say of one notification.
#[derive(Debug, Clone)]
pub struct Rendered<'a> {
    /// `users/{user}/notifications/{id}`.
    pub name: &'a str,
    /// Kind.
    pub kind: NotificationKind,
    /// One line.
    pub title: &'a str,
    /// More.
    pub body: &'a str,
    /// What it is about.
    pub resource: &'a str,
    /// Who did it.
    pub actor: &'a str,
    /// Where.
    pub project: &'a str,
    /// When.
    pub create_time: DateTime<Utc>,
}

/// An email ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// Subject.
    pub subject: String,
    /// text/plain body.
    pub text: String,
    /// text/html body.
    pub html: String,
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Where a user changes what they receive.
pub fn settings_url(public_url: &str, recipient: &str) -> String {
    format!("{public_url}/v1/{recipient}/notificationSettings")
}

/// The email of a notification for `recipient`.
pub fn email(n: &Rendered<'_>, recipient: &str, public_url: &str) -> Email {
    let open = format!("{public_url}{}", link(n.resource));
    let settings = settings_url(public_url, recipient);
    let mut text = format!("{}\n", n.title);
    if !n.body.is_empty() {
        text.push_str(&format!("\n{}\n", n.body));
    }
    if !n.resource.is_empty() {
        text.push_str(&format!("\nOpen: {open}\n"));
    }
    text.push_str(&format!(
        "\n--\nYou receive this because of your taskmesh notification settings: {settings}\n"
    ));
    let mut html = format!(
        "<!doctype html><html><body><p><strong>{}</strong></p>",
        escape(n.title)
    );
    if !n.body.is_empty() {
        html.push_str(&format!("<p>{}</p>", escape(n.body).replace('\n', "<br>")));
    }
    if !n.resource.is_empty() {
        html.push_str(&format!("<p><a href=\"{}\">Open</a></p>", escape(&open)));
    }
    html.push_str(&format!(
        "<hr><p><small>You receive this because of your <a href=\"{}\">notification settings</a>.</small></p></body></html>",
        escape(&settings)
    ));
    Email {
        subject: format!("[taskmesh] {}", n.title),
        text,
        html,
    }
}

/// The JSON body of a webhook request (Standard Webhooks' `type`, `timestamp`, `data`).
pub fn webhook_payload(n: &Rendered<'_>, recipient: &str) -> String {
    serde_json::json!({
        "type": event_type(n.kind),
        "timestamp": n.create_time.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": {
            "notification": n.name,
            "kind": kind_name(n.kind),
            "recipient": recipient,
            "title": n.title,
            "body": n.body,
            "resource": n.resource,
            "link": link(n.resource),
            "actor": n.actor,
            "project": n.project,
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_escapes_what_users_wrote() {
        let n = Rendered {
            name: "users/u/notifications/n",
            kind: NotificationKind::CommentAdded,
            title: "Ann commented on “<b>x</b>”",
            body: "<script>alert(1)</script>",
            resource: "projects/p/tasks/t/comments/c",
            actor: "users/ann",
            project: "projects/p",
            create_time: Utc::now(),
        };
        let mail = email(&n, "users/u", "http://localhost:8080");
        assert!(!mail.html.contains("<script>"));
        assert!(mail.html.contains("&lt;script&gt;"));
        assert!(
            mail.text
                .contains("Open: http://localhost:8080/v1/projects/p/tasks/t/comments/c")
        );
        assert_eq!(
            event_type(NotificationKind::MemberRoleChanged),
            "member.role_changed"
        );
        let payload: serde_json::Value =
            serde_json::from_str(&webhook_payload(&n, "users/u")).expect("json");
        assert_eq!(payload["type"], "comment.added");
        assert_eq!(payload["data"]["kind"], "COMMENT_ADDED");
    }
}
