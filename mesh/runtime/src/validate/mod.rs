//! The one place a request is checked against its contract before a handler sees it: the
//! `buf.validate` rules of the request message (evaluated by prost-protovalidate, CEL included) and
//! `google.api.field_behavior` (AIP-203): REQUIRED fields must be set, OUTPUT_ONLY fields sent by
//! a client are cleared, IMMUTABLE fields cannot be named in an update mask. Every violation is
//! reported at once, as one INVALID_ARGUMENT with a `BadRequest` whose field paths are the request's
//! proto field paths (`project.display_name`, `task.labels[2]`); the gateway spells them in JSON
//! for REST callers.

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message as _;
use prost_protovalidate::{Error as RuleError, Validator};
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value,
};
use tonic::Status;

use crate::status;

mod behaviors;

use behaviors::Behaviors;
pub use behaviors::{behavior, field_behaviors, has_behavior};

/// The rules of every unary and server-streaming method of a descriptor set, by gRPC path.
#[derive(Clone)]
pub struct RequestRules {
    methods: Arc<HashMap<String, MethodRules>>,
    behaviors: Arc<Behaviors>,
    validator: Arc<Validator>,
}

impl std::fmt::Debug for RequestRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestRules")
            .field("methods", &self.methods.len())
            .finish_non_exhaustive()
    }
}

/// How one method's request is checked.
#[derive(Debug, Clone)]
pub struct MethodRules {
    input: MessageDescriptor,
    /// For AIP-134 updates: the resource field and the `update_mask` field.
    update: Option<(FieldDescriptor, FieldDescriptor)>,
}

impl RequestRules {
    /// Reads the methods of `descriptor_set` and compiles each request's rules, so that a rule
    /// that cannot compile (a bad regex or CEL expression) stops the service at startup.
    pub fn new(descriptor_set: &[u8]) -> Result<Self, String> {
        let pool = DescriptorPool::decode(descriptor_set)
            .map_err(|e| format!("invalid descriptor set: {e}"))?;
        let validator = Validator::new();
        let mut methods = HashMap::new();
        for service in pool.services() {
            for method in service.methods() {
                if method.is_client_streaming() {
                    continue;
                }
                let input = method.input();
                if let Err(RuleError::Compilation(err)) =
                    validator.validate(&DynamicMessage::new(input.clone()))
                {
                    return Err(format!(
                        "the buf.validate rules of {} do not compile: {err}",
                        input.full_name()
                    ));
                }
                methods.insert(
                    format!("/{}/{}", service.full_name(), method.name()),
                    MethodRules {
                        update: update_shape(&input),
                        input,
                    },
                );
            }
        }
        Ok(Self {
            methods: Arc::new(methods),
            behaviors: Arc::new(Behaviors::of(&pool)),
            validator: Arc::new(validator),
        })
    }

    /// The rules of the method at gRPC `path`, if it is one of the set's.
    pub fn method(&self, path: &str) -> Option<&MethodRules> {
        self.methods.get(path)
    }

    /// Checks one encoded request of `method`. `Ok(None)`: valid as sent; `Ok(Some(bytes))`:
    /// valid once its OUTPUT_ONLY fields were cleared, `bytes` being the request to hand on;
    /// `Err`: INVALID_ARGUMENT naming every violated field. A request that does not decode is
    /// passed on untouched (`Ok(None)`) for the server's own decoder to refuse.
    pub fn check(&self, method: &MethodRules, encoded: &[u8]) -> Result<Option<Vec<u8>>, Status> {
        let Ok(mut request) = DynamicMessage::decode(method.input.clone(), encoded) else {
            return Ok(None);
        };
        let cleared = self.behaviors.clear_output_only(&mut request);

        let mut violations = Vec::new();
        // An update's resource with the fields its mask names (`None`: all of them).
        let update = method
            .update
            .as_ref()
            .map(|(resource, mask)| (resource, behaviors::masked_fields(&request, resource, mask)));
        match &update {
            Some((resource, masked)) => {
                self.behaviors.update_fields(
                    &request,
                    resource,
                    masked.as_deref(),
                    &mut violations,
                );
            }
            None => self
                .behaviors
                .required_fields(&request, "", false, &mut violations),
        }
        nul_characters(&request, "", &mut violations);
        match self.validator.validate(&request) {
            Ok(()) => {}
            Err(RuleError::Validation(found)) => {
                for violation in found.violations() {
                    let field = violation.field_path();
                    // An update leaves what its mask does not name as it is, so what is sent
                    // there (usually nothing) is not checked either.
                    if let Some((resource, Some(masked))) = &update
                        && outside_mask(&field, resource, masked)
                    {
                        continue;
                    }
                    if !violations.iter().any(|(f, _)| *f == field) {
                        violations.push((field, describe(violation)));
                    }
                }
            }
            Err(err) => return Err(status::internal(&err)),
        }
        if !violations.is_empty() {
            return Err(status::invalid_argument(violations));
        }
        Ok(cleared.then(|| request.encode_to_vec()))
    }
}

/// The `buf.validate` rules of messages by full name, for what arrives other than as a request
/// (events from other services): a consumer checks again what it acts on.
#[derive(Clone)]
pub struct MessageRules {
    pool: DescriptorPool,
    validator: Arc<Validator>,
}

impl std::fmt::Debug for MessageRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageRules").finish_non_exhaustive()
    }
}

impl MessageRules {
    /// The messages of `descriptor_set`.
    pub fn new(descriptor_set: &[u8]) -> Result<Self, String> {
        let pool = DescriptorPool::decode(descriptor_set)
            .map_err(|e| format!("invalid descriptor set: {e}"))?;
        Ok(Self {
            pool,
            validator: Arc::new(Validator::new()),
        })
    }

    /// `(field path, what is wrong)` for every rule `message` breaks; empty when it keeps them.
    pub fn violations<M: prost::Name>(&self, message: &M) -> Result<Vec<(String, String)>, String> {
        let descriptor = self
            .pool
            .get_message_by_name(&M::full_name())
            .ok_or_else(|| format!("{} is not in the descriptor set", M::full_name()))?;
        let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
            .map_err(|e| format!("cannot re-decode {}: {e}", M::full_name()))?;
        match self.validator.validate(&dynamic) {
            Ok(()) => Ok(Vec::new()),
            Err(RuleError::Validation(found)) => Ok(found
                .violations()
                .iter()
                .map(|v| (v.field_path(), describe(v)))
                .collect()),
            Err(err) => Err(err.to_string()),
        }
    }
}

/// Every string of `message`, at any depth, that holds U+0000: no PostgreSQL text can store it, so
/// no request field may carry it, whatever its own rules say.
fn nul_characters(message: &DynamicMessage, prefix: &str, out: &mut Vec<(String, String)>) {
    const PROBLEM: &str = "must not contain NUL characters";
    let check = |value: &Value, at: String, out: &mut Vec<(String, String)>| match value {
        Value::String(text) if text.contains('\0') => out.push((at, PROBLEM.to_owned())),
        Value::Message(inner) => nul_characters(inner, &at, out),
        _ => {}
    };
    for (field, value) in message.fields() {
        let path = if prefix.is_empty() {
            field.name().to_owned()
        } else {
            format!("{prefix}.{}", field.name())
        };
        match value {
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    check(item, format!("{path}[{i}]"), out);
                }
            }
            Value::Map(entries) => {
                for (key, item) in entries {
                    let key = match key {
                        MapKey::String(key) => key.clone(),
                        other => format!("{other:?}"),
                    };
                    if key.contains('\0') {
                        out.push((path.clone(), PROBLEM.to_owned()));
                    }
                    check(item, format!("{path}[{key:?}]"), out);
                }
            }
            value => check(value, path, out),
        }
    }
}

/// What a violation says; some rules (a required oneof) come without a message.
fn describe(violation: &prost_protovalidate::Violation) -> String {
    match (violation.message(), violation.rule_id()) {
        ("", "required") => "is required: set one of its fields".to_owned(),
        ("", rule) => format!("breaks the rule `{rule}`"),
        (message, _) => message.to_owned(),
    }
}

/// Whether the violation at `field` (a path like `project.display_name`) lies in the update's
/// `resource` but outside the fields its mask names.
fn outside_mask(field: &str, resource: &FieldDescriptor, masked: &[FieldDescriptor]) -> bool {
    let Some(inner) = field
        .strip_prefix(resource.name())
        .and_then(|rest| rest.strip_prefix('.'))
    else {
        return false;
    };
    let top = inner.split(['.', '[']).next().unwrap_or(inner);
    !masked.iter().any(|m| m.name() == top)
}

/// `(resource field, update_mask field)` when `input` is an AIP-134 update request.
fn update_shape(input: &MessageDescriptor) -> Option<(FieldDescriptor, FieldDescriptor)> {
    let mask = input.get_field_by_name("update_mask")?;
    match mask.kind() {
        Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask" => {}
        _ => return None,
    }
    let resource = input.fields().find(|field| match field.kind() {
        Kind::Message(m) => is_resource(&m) && !field.is_list() && !field.is_map(),
        _ => false,
    })?;
    Some((resource, mask))
}

fn is_resource(message: &MessageDescriptor) -> bool {
    message
        .parent_pool()
        .get_extension_by_name("google.api.resource")
        .is_some_and(|ext| message.options().has_extension(&ext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use taskmesh_contracts::projects_v1::{
        Column, ColumnKind, CreateColumnRequest, CreateProjectRequest, Project,
        UpdateProjectRequest,
    };

    fn rules() -> RequestRules {
        RequestRules::new(taskmesh_contracts::FILE_DESCRIPTOR_SET).expect("rules compile")
    }

    fn check<M: Message>(method: &str, request: &M) -> Result<Option<Vec<u8>>, Status> {
        let rules = rules();
        let method = rules.method(method).expect("method").clone();
        rules.check(&method, &request.encode_to_vec())
    }

    fn fields(status: &Status) -> Vec<String> {
        use tonic_types::StatusExt;
        status
            .get_error_details()
            .bad_request()
            .expect("bad request")
            .field_violations
            .iter()
            .map(|v| v.field.clone())
            .collect()
    }

    #[test]
    fn every_violation_is_reported_at_once() {
        let request = CreateColumnRequest {
            parent: String::new(),
            column: Some(Column {
                display_name: "x".repeat(40),
                kind: 99,
                ..Default::default()
            }),
            column_id: "Not An Id".into(),
            request_id: "nope".into(),
        };
        let status = check("/taskmesh.projects.v1.BoardService/CreateColumn", &request)
            .expect_err("invalid");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let mut found = fields(&status);
        found.sort();
        assert_eq!(
            found,
            [
                "column.display_name",
                "column.kind",
                "column_id",
                "parent",
                "request_id"
            ]
        );
    }

    #[test]
    fn required_fields_and_valid_requests() {
        let missing = CreateProjectRequest {
            project: Some(Project::default()),
            ..Default::default()
        };
        let status = check(
            "/taskmesh.projects.v1.ProjectService/CreateProject",
            &missing,
        )
        .expect_err("required");
        assert_eq!(fields(&status), ["project.display_name"]);

        let valid = CreateColumnRequest {
            parent: "projects/p/boards/b".into(),
            column: Some(Column {
                display_name: "Review".into(),
                kind: ColumnKind::Custom as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            check("/taskmesh.projects.v1.BoardService/CreateColumn", &valid).expect("valid"),
            None
        );
    }

    #[test]
    fn output_only_fields_are_cleared_not_refused() {
        let request = CreateProjectRequest {
            project: Some(Project {
                display_name: "Roadmap".into(),
                uid: "client-chosen".into(),
                creator: "users/mallory".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = check(
            "/taskmesh.projects.v1.ProjectService/CreateProject",
            &request,
        )
        .expect("valid")
        .expect("re-encoded");
        let seen = CreateProjectRequest::decode(bytes.as_slice()).expect("decodes");
        let project = seen.project.expect("project");
        assert_eq!(project.display_name, "Roadmap");
        assert!(project.uid.is_empty() && project.creator.is_empty());
    }

    #[test]
    fn updates_check_the_mask_not_the_whole_resource() {
        let mask = |paths: &[&str]| prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        };
        let description_only = UpdateProjectRequest {
            project: Some(Project {
                name: "projects/p".into(),
                description: "new".into(),
                ..Default::default()
            }),
            update_mask: Some(mask(&["description"])),
        };
        let method = "/taskmesh.projects.v1.ProjectService/UpdateProject";
        assert!(check(method, &description_only).is_ok());

        let bad = UpdateProjectRequest {
            project: Some(Project::default()),
            update_mask: Some(mask(&["display_name", "organization"])),
        };
        let mut found = fields(&check(method, &bad).expect_err("invalid"));
        found.sort();
        assert_eq!(found, ["project.display_name", "project.organization"]);

        // What the mask leaves out is not changed, so its rules are not checked; what it names is.
        let beside_the_mask = |paths: &[&str]| UpdateProjectRequest {
            project: Some(Project {
                name: "projects/p".into(),
                display_name: "x".repeat(65),
                description: "new".into(),
                ..Default::default()
            }),
            update_mask: Some(mask(paths)),
        };
        assert!(check(method, &beside_the_mask(&["description"])).is_ok());
        for paths in [
            &["displayName"][..],
            &["description", "display_name"],
            &["*"],
        ] {
            let found = fields(&check(method, &beside_the_mask(paths)).expect_err("too long"));
            assert_eq!(found, ["project.display_name"], "{paths:?}");
        }
    }

    #[test]
    fn client_chosen_ids_follow_aip_122() {
        let create = |id: &str| CreateProjectRequest {
            project: Some(Project {
                display_name: "Roadmap".into(),
                ..Default::default()
            }),
            project_id: id.into(),
            ..Default::default()
        };
        let method = "/taskmesh.projects.v1.ProjectService/CreateProject";
        assert!(check(method, &create("my-project-1")).is_ok());
        assert!(check(method, &create("")).is_ok());
        for bad in [
            "ab",
            "1abc",
            "has_underscore",
            "ends-",
            "UPPER",
            &"a".repeat(64),
        ] {
            let status = check(method, &create(bad)).expect_err(bad);
            assert_eq!(fields(&status), ["project_id"], "{bad}");
        }
    }

    /// Schemathesis found it: `\u{85}` (NEL) is whitespace to Rust's `\s` but not to the OpenAPI
    /// document's (ECMA-262) `\s`, so the two disagreed on a name of it alone. The rules name the
    /// characters themselves now: C1 controls are refused like C0 ones, and "blank" is ASCII
    /// spaces and controls, the same in every regex engine.
    #[test]
    fn blank_and_control_character_names_are_refused() {
        let method = "/taskmesh.projects.v1.ProjectService/CreateProject";
        for bad in [
            "   ",
            "a\u{7}b",
            "line\nbreak",
            "\u{85}",
            "a\u{85}b",
            "\u{9f}",
        ] {
            let request = CreateProjectRequest {
                project: Some(Project {
                    display_name: bad.into(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let status = check(method, &request).expect_err(bad);
            assert_eq!(fields(&status), ["project.display_name"], "{bad:?}");
        }
    }

    #[test]
    fn names_with_unicode_spaces_around_a_character_are_accepted() {
        let method = "/taskmesh.projects.v1.ProjectService/CreateProject";
        for good in ["\u{a0}Café\u{3000}", "\u{feff}x", "\u{3000}"] {
            let request = CreateProjectRequest {
                project: Some(Project {
                    display_name: good.into(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            assert!(check(method, &request).is_ok(), "{good:?}");
        }
    }

    /// Schemathesis found it: a NUL in a login email reached PostgreSQL and came back INTERNAL.
    #[test]
    fn nul_characters_are_refused_in_any_string_whatever_its_rules() {
        use taskmesh_contracts::identity_v1::LoginRequest;
        let login = LoginRequest {
            email: "ada\u{0}@example.org".into(),
            password: "correct horse battery".into(),
        };
        let status = check("/taskmesh.identity.v1.IdentityService/Login", &login)
            .expect_err("a NUL in the email");
        assert_eq!(fields(&status), ["email"]);
        let project = CreateProjectRequest {
            project: Some(Project {
                display_name: "Fine".into(),
                description: "hidden\u{0}text".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = check(
            "/taskmesh.projects.v1.ProjectService/CreateProject",
            &project,
        )
        .expect_err("a NUL in a nested field");
        assert_eq!(fields(&status), ["project.description"]);
    }

    #[test]
    fn a_job_needs_one_kind_and_bounded_settings() {
        use taskmesh_contracts::tasks_v1::{CreateTaskRequest, Job, Task};
        let request = CreateTaskRequest {
            parent: "projects/p".into(),
            task: Some(Task {
                title: "Crawl".into(),
                column: "projects/p/boards/b/columns/c".into(),
                job: Some(Job {
                    max_attempts: 11,
                    timeout: Some(prost_types::Duration {
                        seconds: 3_153_600_000,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let status =
            check("/taskmesh.tasks.v1.TaskService/CreateTask", &request).expect_err("invalid");
        let mut found = fields(&status);
        found.sort();
        assert_eq!(
            found,
            ["task.job.kind", "task.job.max_attempts", "task.job.timeout"]
        );
        assert!(
            status.message().contains("task.job.kind: is required"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn field_behaviors_are_read_from_the_contracts() {
        let pool = DescriptorPool::decode(taskmesh_contracts::FILE_DESCRIPTOR_SET).expect("pool");
        let project = pool
            .get_message_by_name("taskmesh.projects.v1.Project")
            .expect("Project");
        let field = |name: &str| project.get_field_by_name(name).expect("field");
        assert!(has_behavior(&field("display_name"), behavior::REQUIRED));
        assert!(has_behavior(&field("create_time"), behavior::OUTPUT_ONLY));
        assert!(has_behavior(&field("organization"), behavior::IMMUTABLE));
        assert!(field_behaviors(&field("description")).is_empty());
    }
}
