//! An event on its way out: its protobuf payload and the metadata that becomes NATS headers.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Header names of ARCHITECTURE.md §5.
pub mod headers {
    /// JetStream's de-duplication key: the event id.
    pub const MSG_ID: &str = "Nats-Msg-Id";
    /// Fully qualified protobuf message name of the payload.
    pub const EVENT_TYPE: &str = "Taskmesh-Event-Type";
    /// Publishing service.
    pub const SOURCE: &str = "Taskmesh-Source";
    /// When the change happened, RFC 3339.
    pub const TIME: &str = "Taskmesh-Time";
    /// W3C trace context.
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C trace state.
    pub const TRACESTATE: &str = "tracestate";
    /// Correlation id of the user action.
    pub const CORRELATION_ID: &str = "Taskmesh-Correlation-Id";
    /// Resource name the event is about.
    pub const SUBJECT: &str = "Taskmesh-Subject";
}

/// One event to publish.
#[derive(Debug, Clone)]
pub struct OutgoingEvent {
    /// Unique id; becomes `Nats-Msg-Id`.
    pub id: Uuid,
    /// NATS subject, `taskmesh.<context>.v1.<event_name>`.
    pub subject: String,
    /// Fully qualified protobuf type, `taskmesh.projects.v1.ProjectCreated`.
    pub event_type: String,
    /// Resource name the event is about.
    pub resource: String,
    /// Encoded protobuf message.
    pub payload: Vec<u8>,
    /// Correlation id of the action that caused it.
    pub correlation_id: String,
    /// W3C `traceparent` of the call that caused it.
    pub traceparent: Option<String>,
    /// W3C `tracestate`.
    pub tracestate: Option<String>,
    /// When the change happened.
    pub time: DateTime<Utc>,
    /// More headers to send (dead letters carry their failure in them).
    pub headers: Vec<(String, String)>,
}

impl OutgoingEvent {
    /// Bytes the event takes on the wire: payload, subject and headers (with room for NATS's own).
    pub fn size(&self) -> usize {
        let optional = |v: &Option<String>| v.as_deref().map_or(0, str::len);
        self.payload.len()
            + self.subject.len()
            + self.event_type.len()
            + self.resource.len()
            + self.correlation_id.len()
            + optional(&self.traceparent)
            + optional(&self.tracestate)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 4)
                .sum::<usize>()
            + 256
    }

    /// An event for `message`, typed by its protobuf name (`taskmesh.projects.v1.ProjectCreated`,
    /// from the generated type) and published on the subject derived from it
    /// (`taskmesh.projects.v1.project_created`).
    pub fn new<M: prost::Name>(resource: &str, message: &M) -> Self {
        Self::from_encoded(&M::full_name(), resource, message.encode_to_vec())
    }

    /// Like [`OutgoingEvent::new`] for a message that is already encoded.
    pub fn from_encoded(full_name: &str, resource: &str, payload: Vec<u8>) -> Self {
        Self {
            id: Uuid::now_v7(),
            subject: subject_for(full_name),
            event_type: full_name.to_owned(),
            resource: resource.to_owned(),
            payload,
            correlation_id: String::new(),
            traceparent: None,
            tracestate: None,
            time: Utc::now(),
            headers: Vec::new(),
        }
    }

    /// Sets the correlation id and trace context of the call that caused the event.
    pub fn caused_by(mut self, correlation_id: &str, traceparent: &str) -> Self {
        correlation_id.clone_into(&mut self.correlation_id);
        if !traceparent.is_empty() {
            self.traceparent = Some(traceparent.to_owned());
        }
        self
    }
}

/// `taskmesh.projects.v1.ProjectCreated` → `taskmesh.projects.v1.project_created`.
pub fn subject_for(full_name: &str) -> String {
    let (package, name) = full_name.rsplit_once('.').unwrap_or(("", full_name));
    let mut snake = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    if package.is_empty() {
        snake
    } else {
        format!("{package}.{snake}")
    }
}

/// The payload of `message` decoded as `M` when the event is of type `M` (its
/// `Taskmesh-Event-Type` is `M`'s protobuf name); `None` for any other type.
pub fn decode_as<M: prost::Name + Default>(
    message: &async_nats::jetstream::Message,
) -> Option<Result<M, prost::DecodeError>> {
    let event_type = message.headers.as_ref()?.get(headers::EVENT_TYPE)?.as_str();
    // Compared by parts: no name is built for each message and type tried.
    let name = event_type
        .strip_prefix(M::PACKAGE)
        .and_then(|rest| rest.strip_prefix('.'));
    (name == Some(M::NAME)).then(|| M::decode(message.payload.as_ref()))
}

/// The subject events of type `M` are published on (`taskmesh.identity.v1.user_registered`).
pub fn subject_of<M: prost::Name>() -> String {
    subject_for(&M::full_name())
}

/// The value of header `name` of a received message (empty when absent).
pub fn header(message: &async_nats::jetstream::Message, name: &str) -> String {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

/// The context of work caused by a received event: it carries on the event's correlation id and
/// trace, so the calls and events it causes belong to the same user action.
pub fn caused_context(message: &async_nats::jetstream::Message) -> taskmesh_mesh::CallContext {
    let mut context = taskmesh_mesh::CallContext::background();
    let correlation = header(message, headers::CORRELATION_ID);
    if !correlation.is_empty() {
        context.correlation_id = correlation;
    }
    let traceparent = header(message, headers::TRACEPARENT);
    if let Some((trace_id, _)) = taskmesh_mesh::layer::parse_traceparent(&traceparent) {
        context.trace_id = trace_id.to_owned();
        context.traceparent = traceparent.clone();
    }
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_the_snake_case_event_name_under_the_package() {
        assert_eq!(
            subject_for("taskmesh.projects.v1.ProjectCreated"),
            "taskmesh.projects.v1.project_created"
        );
        assert_eq!(
            subject_for("taskmesh.projects.v1.MemberRoleChanged"),
            "taskmesh.projects.v1.member_role_changed"
        );
    }
}
