//! An OpenAPI 3.1 document generated from the same routes and descriptors the gateway serves:
//! every route with its path and query parameters, request and response schemas, and the
//! `google.rpc.Status` error response. Every operation but sign-up and sign-in requires a bearer
//! token or an API key (`securitySchemes`), so Swagger UI's "Authorize" sends them.

use std::collections::{BTreeMap, HashMap};

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};
use taskmesh_mesh::validate::{behavior, has_behavior};

use crate::routes::RouteTable;

mod ranges;
mod rules;
mod wide;

/// The variable names of every `google.api.resource` pattern in `pool`, by its collection ids:
/// `["projects", "tasks"]` -> `["project", "task"]`.
fn resource_names(pool: &DescriptorPool) -> HashMap<Vec<String>, Vec<String>> {
    let mut names = HashMap::new();
    for (_, pattern) in taskmesh_mesh::names::resource_patterns(pool) {
        let owned = |parts: Vec<&str>| parts.into_iter().map(str::to_owned).collect::<Vec<_>>();
        names
            .entry(owned(pattern.collections()))
            .or_insert_with(|| owned(pattern.variables()));
    }
    names
}

/// The document for `routes`.
pub fn document(routes: &RouteTable, title: &str) -> Value {
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut schemas: BTreeMap<String, Value> = BTreeMap::new();
    let mut pending: Vec<MessageDescriptor> = Vec::new();
    let mut operation_ids: BTreeMap<String, usize> = BTreeMap::new();
    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    let resources = routes
        .bindings()
        .first()
        .map(|b| resource_names(b.method.parent_pool()))
        .unwrap_or_default();
    let names = |collections: &[&str]| {
        let key: Vec<String> = collections.iter().map(|c| (*c).to_owned()).collect();
        resources.get(&key).cloned()
    };

    for binding in routes.bindings() {
        let input = binding.method.input();
        let output = binding.method.output();
        let service = binding.method.parent_service();
        let base_id = format!("{}_{}", service.name(), binding.method.name());
        let seen = operation_ids.entry(base_id.clone()).or_insert(0);
        let operation_id = if *seen == 0 {
            base_id
        } else {
            format!("{base_id}_{seen}")
        };
        *seen += 1;

        let bound: Vec<String> = binding.template.variables().map(str::to_owned).collect();
        let (path, path_parameters) = binding.template.openapi_form(&names);
        let mut parameters: Vec<Value> = path_parameters
            .iter()
            .map(|parameter| {
                let schema = if parameter.spans_segments {
                    json!({"type": "string"})
                } else {
                    json!({"type": "string", "pattern": taskmesh_mesh::names::variable_pattern(&parameter.name)})
                };
                json!({
                    "name": parameter.name,
                    "in": "path",
                    "required": true,
                    "schema": schema,
                    "description": format!(
                        "part of the request's `{}` (the route is `{}`)",
                        parameter.field, binding.template
                    ),
                })
            })
            .collect();
        if binding.body.as_deref() != Some("*") {
            for field in input.fields() {
                let top_bound = bound
                    .iter()
                    .any(|b| b == field.name() || b.starts_with(&format!("{}.", field.name())));
                if top_bound || binding.body.as_deref() == Some(field.name()) {
                    continue;
                }
                if let Some(mut schema) = query_schema(&field) {
                    rules::apply(&field, &mut schema);
                    parameters.push(json!({
                        "name": field.json_name(),
                        "in": "query",
                        "required": has_behavior(&field, behavior::REQUIRED),
                        "schema": schema,
                    }));
                }
            }
        }

        let mut operation = Map::new();
        operation.insert("operationId".into(), Value::String(operation_id));
        let rpc = format!("/{}/{}", service.full_name(), binding.method.name());
        if taskmesh_mesh::auth::is_public(&rpc) {
            // Signing up and in needs no credentials; everything else uses the global ones.
            operation.insert("security".into(), json!([]));
        }
        operation.insert("tags".into(), json!([service.name()]));
        let comment = comment_of(
            binding.method.parent_file().file_descriptor_proto(),
            binding.method.path(),
        );
        let summary = comment
            .as_deref()
            .and_then(|c| c.split(['.', '\n']).next())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map_or_else(|| binding.method.name().to_owned(), str::to_owned);
        operation.insert("summary".into(), Value::String(summary));
        operation.insert(
            "description".into(),
            Value::String(
                format!(
                    "{}\n\ngRPC: `{}`",
                    comment.as_deref().unwrap_or_default(),
                    rpc
                )
                .trim_start()
                .to_owned(),
            ),
        );
        tags.entry(service.name().to_owned()).or_insert_with(|| {
            comment_of(
                service.parent_file().file_descriptor_proto(),
                service.path(),
            )
            .unwrap_or_else(|| service.full_name().to_owned())
        });
        operation.insert("parameters".into(), Value::Array(parameters));
        match binding.body.as_deref() {
            Some("*") => {
                pending.push(input.clone());
                operation.insert("requestBody".into(), body_of(&schema_ref(&input)));
            }
            Some(field) => {
                if let Some(field) = input.get_field_by_name(field) {
                    let body = if is_http_body(&field.kind()) {
                        // The body is the bytes themselves, of any type (streamed for uploads).
                        json!({"required": true, "content": {"application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}}}})
                    } else {
                        body_of(&field_schema(&field, &mut pending))
                    };
                    operation.insert("requestBody".into(), body);
                }
            }
            None => {}
        }
        let response_schema = match &binding.response_body {
            Some(field) => output
                .get_field_by_name(field)
                .map_or_else(|| json!({}), |f| field_schema(&f, &mut pending)),
            None => {
                pending.push(output.clone());
                schema_ref(&output)
            }
        };
        let ok = if binding.response_body.is_none() && output.full_name() == HTTP_BODY {
            // The body is the bytes themselves, typed by the response's Content-Type.
            json!({
                "description": "The bytes, with their Content-Type (streamed for downloads)",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}
            })
        } else if binding.method.is_server_streaming() {
            // A stream: one JSON object per line, or Server-Sent Events for clients that accept
            // them; an error after the first message arrives as a last `{"error": Status}` record.
            json!({
                "description": "A stream of messages: newline-delimited JSON (one object per line), or \
                    Server-Sent Events (`data:` lines) when the request accepts `text/event-stream`. \
                    A failure after the stream began ends it with a record `{\"error\": google.rpc.Status}`.",
                "content": {
                    "application/x-ndjson": {"schema": response_schema},
                    "text/event-stream": {"schema": {"type": "string"}},
                }
            })
        } else {
            json!({"description": "OK", "content": {"application/json": {"schema": response_schema}}})
        };
        operation.insert(
            "responses".into(),
            json!({
                "200": ok,
                "default": {
                    "description": "An error: google.rpc.Status with ErrorInfo / BadRequest details",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/google.rpc.Status"}}}
                }
            }),
        );
        // OpenAPI 3.1 has no key for a custom HTTP method (google.api.http `custom`): it is kept
        // as a specification extension, `x-report` for REPORT.
        let method = binding.http_method.as_str().to_lowercase();
        let key = match method.as_str() {
            "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace" => method,
            _ => format!("x-{method}"),
        };
        paths
            .entry(path)
            .or_default()
            .insert(key, Value::Object(operation));
    }

    while let Some(message) = pending.pop() {
        if schemas.contains_key(message.full_name()) {
            continue;
        }
        let schema = message_schema(&message, &mut pending);
        schemas.insert(message.full_name().to_owned(), schema);
    }
    schemas.entry("google.rpc.Status".to_owned()).or_insert_with(|| {
        json!({
            "type": "object",
            "properties": {
                "code": {"type": "integer", "format": "int32"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object", "properties": {"@type": {"type": "string"}}, "additionalProperties": true}}
            }
        })
    });

    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "tags": tags
            .iter()
            .map(|(name, description)| json!({"name": name, "description": description}))
            .collect::<Vec<_>>(),
        "security": [{"bearerAuth": []}, {"apiKey": []}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "The access token from POST /v1/sessions:login"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key",
                    "description": "An API key from POST /v1/users/{user}/apiKeys"},
            },
        },
    })
}

const HTTP_BODY: &str = "google.api.HttpBody";

fn is_http_body(kind: &Kind) -> bool {
    matches!(kind, Kind::Message(m) if m.full_name() == HTTP_BODY)
}

fn body_of(schema: &Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

fn schema_ref(message: &MessageDescriptor) -> Value {
    json!({"$ref": format!("#/components/schemas/{}", message.full_name())})
}

fn query_schema(field: &FieldDescriptor) -> Option<Value> {
    if field.is_map() {
        return None;
    }
    let item = match field.kind() {
        Kind::Message(m) => well_known(&m)?,
        // The query string names an enum's value or gives its number, as proto JSON allows.
        Kind::Enum(e) => {
            let names = e.values().map(|v| v.name().to_owned());
            let numbers = e.values().map(|v| v.number().to_string());
            json!({"type": "string", "enum": names.chain(numbers).collect::<Vec<_>>()})
        }
        _ => scalar_schema(field),
    };
    Some(if field.is_list() {
        json!({"type": "array", "items": item})
    } else {
        item
    })
}

fn scalar_schema(field: &FieldDescriptor) -> Value {
    match field.kind() {
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "format": "uint32"}),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            let (low, high) = wide::bounds(true);
            wide::schema("int64", low, high)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            let (low, high) = wide::bounds(false);
            wide::schema("uint64", low, high)
        }
        Kind::Float => json!({"type": "number", "format": "float"}),
        Kind::Double => json!({"type": "number", "format": "double"}),
        Kind::String => json!({"type": "string"}),
        Kind::Bytes => json!({"type": "string", "format": "byte"}),
        Kind::Enum(e) => {
            json!({"type": "string", "enum": e.values().map(|v| v.name().to_owned()).collect::<Vec<_>>()})
        }
        Kind::Message(m) => schema_ref(&m),
    }
}

fn well_known(message: &MessageDescriptor) -> Option<Value> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"})
        }
        "google.protobuf.FieldMask" => {
            json!({"type": "string", "description": "comma-separated field paths"})
        }
        "google.protobuf.StringValue" | "google.protobuf.BytesValue" => json!({"type": "string"}),
        "google.protobuf.BoolValue" => json!({"type": "boolean"}),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => json!({"type": "integer"}),
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => json!({"type": "string"}),
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => json!({"type": "number"}),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.Any" => {
            json!({"type": "object", "properties": {"@type": {"type": "string"}}, "additionalProperties": true})
        }
        _ => return None,
    })
}

fn field_schema(field: &FieldDescriptor, pending: &mut Vec<MessageDescriptor>) -> Value {
    let item = match field.kind() {
        Kind::Message(m) if field.is_map() => {
            let value = m
                .get_field_by_name("value")
                .map_or_else(|| json!({}), |v| field_schema(&v, pending));
            return json!({"type": "object", "additionalProperties": value});
        }
        Kind::Message(m) => well_known(&m).unwrap_or_else(|| {
            pending.push(m.clone());
            schema_ref(&m)
        }),
        _ => scalar_schema(field),
    };
    if field.is_list() {
        json!({"type": "array", "items": item})
    } else {
        item
    }
}

fn message_schema(message: &MessageDescriptor, pending: &mut Vec<MessageDescriptor>) -> Value {
    if let Some(schema) = well_known(message) {
        return schema;
    }
    let parent = message.parent_file();
    let file = parent.file_descriptor_proto();
    let properties: Map<String, Value> = message
        .fields()
        .map(|f| {
            let mut schema = field_schema(&f, pending);
            if let Value::Object(object) = &mut schema {
                if let Some(comment) = comment_of(file, f.path()) {
                    object.insert("description".into(), Value::String(comment));
                }
                if has_behavior(&f, behavior::OUTPUT_ONLY) {
                    object.insert("readOnly".into(), Value::Bool(true));
                }
            }
            rules::apply(&f, &mut schema);
            // A oneof's member is present or absent: `null` would count as present for JSON
            // Schema's `required`, as absent for proto JSON.
            let in_oneof = f.containing_oneof().is_some_and(|o| !o.is_synthetic());
            if !has_behavior(&f, behavior::REQUIRED) && !in_oneof {
                rules::nullable(&mut schema);
            }
            (f.json_name().to_owned(), schema)
        })
        .collect();
    let required: Vec<Value> = message
        .fields()
        .filter(|f| has_behavior(f, behavior::REQUIRED))
        .map(|f| Value::String(f.json_name().to_owned()))
        .collect();
    // Proto JSON refuses fields a message does not have.
    let mut schema =
        json!({"type": "object", "properties": properties, "additionalProperties": false});
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    let oneofs = rules::oneofs(message);
    // A message that is nothing but one required oneof (a trigger, an action) is one of its
    // fields: said as alternatives of one property each, a form generators can draw values from
    // (they give up on `required` alternatives over shared properties, and on property counts).
    let only_a_required_oneof = oneofs.len() == 1
        && oneofs[0].get("oneOf").is_some()
        && message
            .fields()
            .all(|f| f.containing_oneof().is_some_and(|o| !o.is_synthetic()));
    if only_a_required_oneof {
        let alternatives: Vec<Value> = schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, property)| {
                json!({
                    "type": "object",
                    "properties": {name: property},
                    "required": [name],
                    "additionalProperties": false,
                })
            })
            .collect();
        schema = json!({"type": "object", "oneOf": alternatives});
    } else if !oneofs.is_empty() {
        schema["allOf"] = Value::Array(oneofs);
    }
    if let Some(comment) = comment_of(file, message.path()) {
        schema["description"] = Value::String(comment);
    }
    schema
}

/// The comment above the element at `path` in `file`, trimmed (`None` without one).
fn comment_of(file: &prost_types::FileDescriptorProto, path: &[i32]) -> Option<String> {
    let location = file
        .source_code_info
        .as_ref()?
        .location
        .iter()
        .find(|location| location.path == path)?;
    let text = location.leading_comments.as_deref()?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let joined = lines.join("\n").trim().to_owned();
    (!joined.is_empty()).then_some(joined)
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;

    use super::*;

    #[test]
    fn operations_and_schemas_carry_the_comments_of_the_contracts() {
        let pool = DescriptorPool::decode(taskmesh_contracts::FILE_DESCRIPTOR_SET).expect("pool");
        let routes = RouteTable::from_pool(&pool).expect("routes");
        let doc = document(&routes, "taskmesh");
        let get = &doc["paths"]["/v1/projects/{project}/tasks/{task}"]["get"];
        assert_eq!(get["summary"], "Gets a task, also a soft-deleted one");
        assert!(
            get["description"]
                .as_str()
                .is_some_and(|d| d.contains("/taskmesh.tasks.v1.TaskService/GetTask"))
        );
        assert_eq!(get["tags"], json!(["TaskService"]));
        let tags = doc["tags"].as_array().expect("tags");
        assert!(tags.iter().any(|t| t["name"] == "TaskService"
            && t["description"].as_str().is_some_and(|d| !d.is_empty())));
        let task = &doc["components"]["schemas"]["taskmesh.tasks.v1.Task"];
        assert_eq!(task["properties"]["createTime"]["readOnly"], true);
        let project = &doc["components"]["schemas"]["taskmesh.projects.v1.Project"];
        assert!(
            project["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("displayName"))),
            "REQUIRED fields are required: {project}"
        );
        assert!(task["properties"]["title"]["readOnly"].is_null());
        assert!(
            task["properties"]["title"]["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }

    #[test]
    fn required_oneofs_say_exactly_one_of_their_fields() {
        let pool = DescriptorPool::decode(taskmesh_contracts::FILE_DESCRIPTOR_SET).expect("pool");
        let routes = RouteTable::from_pool(&pool).expect("routes");
        let doc = document(&routes, "taskmesh");
        let schemas = &doc["components"]["schemas"];
        // Nothing but the oneof: one of the objects of exactly one of its fields.
        let trigger = &schemas["taskmesh.scheduler.v1.Trigger"];
        let alternatives = trigger["oneOf"].as_array().expect("alternatives");
        assert_eq!(alternatives.len(), 4, "{trigger}");
        for alternative in alternatives {
            assert_eq!(alternative["required"].as_array().map(Vec::len), Some(1));
            assert_eq!(alternative["additionalProperties"], false);
        }
        assert!(trigger["allOf"].is_null(), "{trigger}");
        // The oneof beside other fields: one of its members, whatever else is there.
        let job = &schemas["taskmesh.tasks.v1.Job"];
        assert_eq!(
            job["allOf"][0]["oneOf"],
            json!([{"required": ["webCrawl"]}, {"required": ["httpRequest"]}]),
            "{job}"
        );
        assert!(job["maxProperties"].is_null());
    }

    #[test]
    fn every_route_is_documented_with_its_schemas() {
        let pool = DescriptorPool::decode(taskmesh_contracts::FILE_DESCRIPTOR_SET).expect("pool");
        let routes = RouteTable::from_pool(&pool).expect("routes");
        let doc = document(&routes, "taskmesh");
        assert_eq!(doc["openapi"], "3.1.0");
        let get = &doc["paths"]["/v1/projects/{project}"]["get"];
        assert!(get.is_object(), "{}", doc["paths"]);
        let operations: usize = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .map(|p| p.as_object().map_or(0, Map::len))
            .sum();
        assert_eq!(operations, routes.bindings().len());
        assert!(doc["components"]["schemas"]["taskmesh.projects.v1.Project"].is_object());
        assert!(doc["components"]["schemas"]["google.rpc.Status"].is_object());
        let list = &doc["paths"]["/v1/projects"]["get"]["parameters"];
        let names: Vec<&str> = list
            .as_array()
            .expect("params")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            names.contains(&"pageSize") && names.contains(&"filter"),
            "{names:?}"
        );
    }

    #[test]
    fn operations_need_credentials_except_signing_up_and_in() {
        let pool = DescriptorPool::decode(taskmesh_contracts::FILE_DESCRIPTOR_SET).expect("pool");
        let doc = document(&RouteTable::from_pool(&pool).expect("routes"), "taskmesh");
        assert_eq!(
            doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
            "bearer"
        );
        assert_eq!(doc["security"][0]["bearerAuth"], json!([]));
        let login = &doc["paths"]["/v1/sessions:login"]["post"];
        assert_eq!(login["security"], json!([]), "{login}");
        let projects = &doc["paths"]["/v1/projects"]["get"];
        assert!(
            projects.get("security").is_none(),
            "the global requirement applies"
        );
    }
}
