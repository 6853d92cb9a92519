//! REST/JSON ↔ protobuf. A request message is assembled from the path variables, the query string
//! and the body, following the binding's `body` rule, as one proto3-JSON document; the response is
//! rendered as canonical proto3 JSON (lowerCamel names), or raw for `google.api.HttpBody`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor,
    SerializeOptions,
};
use serde_json::{Map, Value};

use crate::routes::{Binding, field_path};

const HTTP_BODY: &str = "google.api.HttpBody";

/// A request that cannot be turned into the RPC's message: always a client error (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranscodeError {
    /// The body is not JSON, or not the JSON of the message.
    #[error("invalid JSON body: {0}")]
    Body(String),
    /// A query parameter names no field.
    #[error("unknown query parameter `{0}`")]
    UnknownParameter(String),
    /// A path or query value does not fit its field.
    #[error("invalid value for `{field}`: {reason}")]
    Value {
        /// Dotted field path.
        field: String,
        /// Why.
        reason: String,
    },
}

impl TranscodeError {
    /// The request field to blame, for a `BadRequest` field violation.
    pub fn field(&self) -> String {
        match self {
            Self::Body(_) => "body".to_owned(),
            Self::UnknownParameter(field) | Self::Value { field, .. } => field.clone(),
        }
    }
}

/// Builds and encodes the request message of `binding`.
pub fn build_request(
    binding: &Binding,
    variables: &[(String, String)],
    query: Option<&str>,
    body: &[u8],
    content_type: Option<&str>,
) -> Result<Vec<u8>, TranscodeError> {
    let input = binding.method.input();
    let mut root = Map::new();
    match binding.body.as_deref() {
        None => {}
        Some("*") if !body.iter().all(u8::is_ascii_whitespace) => {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => root = map,
                Ok(_) => {
                    return Err(TranscodeError::Body(
                        "the body must be a JSON object".to_owned(),
                    ));
                }
                Err(e) => return Err(TranscodeError::Body(e.to_string())),
            }
        }
        Some("*") => {}
        Some(field) => {
            let descriptor = input
                .get_field_by_name(field)
                .ok_or_else(|| TranscodeError::Body(format!("no field {field}")))?;
            let is_http_body =
                matches!(descriptor.kind(), Kind::Message(m) if m.full_name() == HTTP_BODY);
            if is_http_body {
                root.insert(
                    descriptor.name().to_owned(),
                    serde_json::json!({
                        "contentType": content_type.unwrap_or("application/octet-stream"),
                        "data": STANDARD.encode(body),
                    }),
                );
            } else if !body.iter().all(u8::is_ascii_whitespace) {
                let value: Value = serde_json::from_slice(body)
                    .map_err(|e| TranscodeError::Body(e.to_string()))?;
                root.insert(descriptor.name().to_owned(), value);
            }
        }
    }

    let bound: Vec<&str> = variables.iter().map(|(f, _)| f.as_str()).collect();
    for (field, value) in variables {
        set(&mut root, &input, field, value, false)?;
    }
    if binding.body.as_deref() != Some("*")
        && let Some(query) = query
    {
        for (key, value) in parse_query(query)? {
            if bound.contains(&key.as_str()) {
                continue;
            }
            set(&mut root, &input, &key, &value, true)?;
        }
    }

    let message = DynamicMessage::deserialize_with_options(
        input,
        Value::Object(root),
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|e| TranscodeError::Body(e.to_string()))?;
    Ok(message.encode_to_vec())
}

/// Splits `a.b=1&c=2&c=3` into decoded pairs (`+` is a space).
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, TranscodeError> {
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let decode = |text: &str| {
            crate::template::decode(&text.replace('+', " ")).ok_or_else(|| TranscodeError::Value {
                field: key.to_owned(),
                reason: "malformed percent-encoding".to_owned(),
            })
        };
        let key = decode(key)?;
        if key.is_empty() {
            return Err(TranscodeError::UnknownParameter(String::new()));
        }
        pairs.push((key, decode(value)?));
    }
    Ok(pairs)
}

/// Sets `path` in the JSON document to `raw`, typed by the field it names; repeated fields collect
/// every value.
fn set(
    root: &mut Map<String, Value>,
    input: &MessageDescriptor,
    path: &str,
    raw: &str,
    from_query: bool,
) -> Result<(), TranscodeError> {
    let fields = field_path(input, path).ok_or_else(|| {
        if from_query {
            TranscodeError::UnknownParameter(path.to_owned())
        } else {
            TranscodeError::Value {
                field: path.to_owned(),
                reason: "no such field".to_owned(),
            }
        }
    })?;
    let Some((leaf, parents)) = fields.split_last() else {
        return Err(TranscodeError::UnknownParameter(path.to_owned()));
    };
    let value = typed(leaf, raw).map_err(|reason| TranscodeError::Value {
        field: path.to_owned(),
        reason,
    })?;
    let mut object = root;
    for parent in parents {
        let entry = object
            .entry(parent.name().to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(inner) = entry else {
            return Err(TranscodeError::Value {
                field: path.to_owned(),
                reason: "not a message".to_owned(),
            });
        };
        // A body may use the JSON name of the same field: keep one spelling.
        if parent.json_name() != parent.name() {
            inner.remove(parent.json_name());
        }
        object = inner;
    }
    if leaf.json_name() != leaf.name() {
        object.remove(leaf.json_name());
    }
    if leaf.is_list() {
        let entry = object
            .entry(leaf.name().to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        match entry {
            Value::Array(items) => items.push(value),
            other => *other = Value::Array(vec![value]),
        }
    } else {
        object.insert(leaf.name().to_owned(), value);
    }
    Ok(())
}

fn typed(field: &FieldDescriptor, raw: &str) -> Result<Value, String> {
    if field.is_map() {
        return Err("maps cannot be set from the path or query".to_owned());
    }
    Ok(match field.kind() {
        Kind::Bool => match raw {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(format!("`{raw}` is not true or false")),
        },
        Kind::Double | Kind::Float => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(raw.to_owned()), Value::Number),
        Kind::Int32
        | Kind::Sint32
        | Kind::Sfixed32
        | Kind::Int64
        | Kind::Sint64
        | Kind::Sfixed64 => raw
            .parse::<i64>()
            .map_or_else(|_| Value::String(raw.to_owned()), Value::from),
        Kind::Uint32 | Kind::Fixed32 | Kind::Uint64 | Kind::Fixed64 => raw
            .parse::<u64>()
            .map_or_else(|_| Value::String(raw.to_owned()), Value::from),
        Kind::Enum(_) => raw
            .parse::<i64>()
            .map_or_else(|_| Value::String(raw.to_owned()), Value::from),
        Kind::String | Kind::Bytes => Value::String(raw.to_owned()),
        Kind::Message(message) => match message.full_name() {
            "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue" => Value::String(raw.to_owned()),
            "google.protobuf.BoolValue" => match raw {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(format!("`{raw}` is not true or false")),
            },
            "google.protobuf.Int32Value" | "google.protobuf.Int64Value" => raw
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("`{raw}` is not an integer"))?,
            "google.protobuf.UInt32Value" | "google.protobuf.UInt64Value" => raw
                .parse::<u64>()
                .map(Value::from)
                .map_err(|_| format!("`{raw}` is not an integer"))?,
            "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => raw
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("`{raw}` is not a number"))?,
            other => return Err(format!("a {other} cannot be set from a single value")),
        },
    })
}

/// A response body ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `Content-Type`.
    pub content_type: String,
    /// The bytes.
    pub body: Vec<u8>,
}

/// Renders an encoded response of `binding` as JSON (or raw `HttpBody`).
pub fn render_response(binding: &Binding, bytes: &[u8]) -> Result<Rendered, String> {
    let output = binding.method.output();
    let message = DynamicMessage::decode(output.clone(), bytes).map_err(|e| e.to_string())?;
    let (message, descriptor) = match &binding.response_body {
        None => (Some(message), output),
        Some(field) => {
            let field = output.get_field_by_name(field).ok_or("no response field")?;
            match field.kind() {
                Kind::Message(inner) if !field.is_list() && !field.is_map() => {
                    let value = message.get_field(&field);
                    (value.as_message().cloned(), inner)
                }
                _ => {
                    let json = to_json(&message)?;
                    let picked = json.get(field.json_name()).cloned().unwrap_or(Value::Null);
                    return Ok(Rendered {
                        content_type: "application/json".to_owned(),
                        body: serde_json::to_vec(&picked).map_err(|e| e.to_string())?,
                    });
                }
            }
        }
    };
    let message = message.unwrap_or_else(|| DynamicMessage::new(descriptor.clone()));
    if descriptor.full_name() == HTTP_BODY {
        return Ok(http_body(&message));
    }
    Ok(Rendered {
        content_type: "application/json".to_owned(),
        body: serde_json::to_vec(&to_json(&message)?).map_err(|e| e.to_string())?,
    })
}

/// The canonical proto3 JSON of a message.
pub fn to_json(message: &DynamicMessage) -> Result<Value, String> {
    message
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .map_err(|e| e.to_string())
}

fn http_body(message: &DynamicMessage) -> Rendered {
    let content_type = message
        .get_field_by_name("content_type")
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let body = message
        .get_field_by_name("data")
        .and_then(|v| v.as_bytes().map(|b| b.to_vec()))
        .unwrap_or_default();
    Rendered { content_type, body }
}

/// `google.rpc.Status` JSON for a gRPC status, with its details decoded from
/// `grpc-status-details-bin` through `pool` (`@type` plus the fields of each detail).
pub fn status_json(pool: &DescriptorPool, status: &tonic::Status) -> Value {
    let code = status.code() as i32;
    let decoded = pool
        .get_message_by_name("google.rpc.Status")
        .filter(|_| !status.details().is_empty())
        .and_then(|desc| DynamicMessage::decode(desc, status.details()).ok())
        .and_then(|message| to_json(&message).ok());
    let mut json = decoded.unwrap_or_else(|| serde_json::json!({}));
    if let Value::Object(map) = &mut json {
        map.insert("code".to_owned(), Value::from(code));
        map.insert(
            "message".to_owned(),
            Value::String(status.message().to_owned()),
        );
        map.entry("details")
            .or_insert_with(|| Value::Array(Vec::new()));
    }
    json
}

/// A violated field's path as a REST caller spells it: JSON names (`displayName`), and relative to
/// the body when the body is one field of the request (`project.display_name` of
/// `POST /v1/projects`, whose body is the project, reads `displayName`). Index and key suffixes
/// (`labels[2]`) are kept; a path that does not resolve is returned as it came.
pub fn rest_field_path(binding: &Binding, path: &str) -> String {
    let mut message = Some(binding.method.input());
    let mut parts = Vec::new();
    for (i, segment) in path.split('.').enumerate() {
        let (name, suffix) = segment
            .find('[')
            .map_or((segment, ""), |at| segment.split_at(at));
        let Some(field) = message.as_ref().and_then(|m| m.get_field_by_name(name)) else {
            return path.to_owned();
        };
        message = match field.kind() {
            prost_reflect::Kind::Message(m) => Some(m),
            _ => None,
        };
        let body_itself = i == 0
            && suffix.is_empty()
            && binding.body.as_deref() == Some(name)
            && path.contains('.');
        if !body_itself {
            parts.push(format!("{}{suffix}", field.json_name()));
        }
    }
    parts.join(".")
}

/// `status` with the field paths of its `BadRequest` spelled for REST callers
/// ([`rest_field_path`]), and in its message where it lists them.
pub fn rest_violations(binding: &Binding, status: &tonic::Status) -> Option<tonic::Status> {
    use tonic_types::StatusExt;
    let mut details = status.get_error_details();
    let bad = details.bad_request()?.clone();
    let mut violations = bad.field_violations;
    let mut renamed = Vec::with_capacity(violations.len());
    for violation in &mut violations {
        let rest = rest_field_path(binding, &violation.field);
        renamed.push((format!("{}: ", violation.field), format!("{rest}: ")));
        violation.field = rest;
    }
    // The runtime's message lists the violations as `field: description; ...`: the same parts
    // with the new names. Any other message stays as it is.
    let message = status
        .message()
        .split("; ")
        .map(|part| {
            renamed
                .iter()
                .find_map(|(from, to)| {
                    part.strip_prefix(from.as_str())
                        .map(|rest| format!("{to}{rest}"))
                })
                .unwrap_or_else(|| part.to_owned())
        })
        .collect::<Vec<_>>()
        .join("; ");
    details.set_bad_request(violations);
    Some(tonic::Status::with_error_details(
        status.code(),
        message,
        details,
    ))
}

/// The HTTP status of a gRPC code (the standard mapping).
pub fn http_status(code: tonic::Code) -> http::StatusCode {
    use http::StatusCode as H;
    use tonic::Code as C;
    match code {
        C::Ok => H::OK,
        C::InvalidArgument | C::FailedPrecondition | C::OutOfRange => H::BAD_REQUEST,
        C::Unauthenticated => H::UNAUTHORIZED,
        C::PermissionDenied => H::FORBIDDEN,
        C::NotFound => H::NOT_FOUND,
        C::AlreadyExists | C::Aborted => H::CONFLICT,
        C::ResourceExhausted => H::TOO_MANY_REQUESTS,
        C::Cancelled => H::from_u16(499).unwrap_or(H::BAD_REQUEST),
        C::Unimplemented => H::NOT_IMPLEMENTED,
        C::Unavailable => H::SERVICE_UNAVAILABLE,
        C::DeadlineExceeded => H::GATEWAY_TIMEOUT,
        C::Unknown | C::Internal | C::DataLoss => H::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn queries_split_and_decode() {
        assert_eq!(
            parse_query("a.b=1&c=x+y&c=%2Fz&flag").expect("ok"),
            vec![
                ("a.b".to_owned(), "1".to_owned()),
                ("c".to_owned(), "x y".to_owned()),
                ("c".to_owned(), "/z".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
        assert!(parse_query("a=%zz").is_err());
    }

    #[test]
    fn grpc_codes_map_to_the_standard_http_statuses() {
        use tonic::Code;
        assert_eq!(http_status(Code::InvalidArgument), 400);
        assert_eq!(http_status(Code::NotFound), 404);
        assert_eq!(http_status(Code::AlreadyExists), 409);
        assert_eq!(http_status(Code::Aborted), 409);
        assert_eq!(http_status(Code::PermissionDenied), 403);
        assert_eq!(http_status(Code::Unauthenticated), 401);
        assert_eq!(http_status(Code::ResourceExhausted), 429);
        assert_eq!(http_status(Code::FailedPrecondition), 400);
        assert_eq!(http_status(Code::Unimplemented), 501);
        assert_eq!(http_status(Code::Unavailable), 503);
        assert_eq!(http_status(Code::DeadlineExceeded), 504);
        assert_eq!(http_status(Code::Internal), 500);
    }

    proptest! {
        #[test]
        fn parsing_any_query_never_panics(query in ".{0,128}") {
            let _ = parse_query(&query);
        }
    }
}
