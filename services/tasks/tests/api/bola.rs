//! The broken-object-level-authorization matrix: every RPC of the projects and tasks contracts,
//! enumerated from the descriptor set (so a new RPC joins by itself), called directly on the
//! services with a request naming the owner's resources, by callers who must be refused: no
//! token, a malformed one, an expired one, one signed by a foreign key, a valid user who is no
//! member, and a viewer attempting a write. Each request satisfies its contract (REQUIRED fields
//! get sample values), so that what refuses it is authorization. No response may carry the
//! owner's data.

use bytes::Bytes;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, ReflectMessage, Value};
use taskmesh_contracts::projects_v1::organization_service_client::OrganizationServiceClient;
use taskmesh_contracts::projects_v1::{CreateOrganizationRequest, Organization, Role};
use taskmesh_contracts::tasks_v1::{AddCommentRequest, Comment};
use taskmesh_mesh::codec::RawCodec;
use taskmesh_testing::identity::{claims, expired_token, foreign_key, sign, token};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::helpers::{OWNER, World, as_user};

/// Marks every piece of the owner's data; no refused caller may see it.
const SECRET: &str = "CONFIDENTIAL";

/// The owner's resources by collection, to fill resource names.
struct Fixture {
    ids: Vec<(&'static str, String)>,
}

impl Fixture {
    /// `pattern` (`projects/*/tasks/*`) with each `*` replaced by the owner's id in that
    /// collection.
    fn name(&self, pattern: &str) -> String {
        let segments: Vec<&str> = pattern.split('/').collect();
        let mut out = Vec::new();
        for (i, segment) in segments.iter().enumerate() {
            if *segment == "*" {
                let collection = segments.get(i.wrapping_sub(1)).copied().unwrap_or_default();
                let id = self
                    .ids
                    .iter()
                    .find(|(c, _)| *c == collection)
                    .map(|(_, id)| id.clone())
                    .unwrap_or_else(|| panic!("no fixture for `{collection}` in {pattern}"));
                out.push(id);
            } else {
                out.push((*segment).to_owned());
            }
        }
        out.join("/")
    }
}

/// One RPC: how to call it and whether it names a resource and changes data.
struct Rpc {
    method: MethodDescriptor,
    /// `{field.path=pattern}` variables of its HTTP rule.
    variables: Vec<(String, String)>,
    writes: bool,
}

fn rpcs(pool: &DescriptorPool) -> Vec<Rpc> {
    let http = pool
        .get_extension_by_name("google.api.http")
        .expect("google.api.http");
    let mut rpcs = Vec::new();
    for service in pool.services() {
        let name = service.full_name();
        if !(name.starts_with("taskmesh.projects.v1.") || name.starts_with("taskmesh.tasks.v1.")) {
            continue;
        }
        for method in service.methods() {
            let Value::Message(rule) = method.options().get_extension(&http).into_owned() else {
                panic!("{} has no http rule", method.full_name());
            };
            let (verb, template) = ["get", "post", "patch", "put", "delete"]
                .iter()
                .find_map(
                    |verb| match rule.get_field_by_name(verb).map(|v| v.into_owned()) {
                        Some(Value::String(t)) if !t.is_empty() => Some((*verb, t)),
                        _ => None,
                    },
                )
                .unwrap_or_else(|| panic!("{} has no path", method.full_name()));
            let variables = template
                .split('{')
                .skip(1)
                .filter_map(|part| part.split_once('}').map(|(inner, _)| inner))
                .filter_map(|inner| inner.split_once('='))
                .map(|(field, pattern)| (field.to_owned(), pattern.to_owned()))
                .collect();
            rpcs.push(Rpc {
                method,
                variables,
                writes: verb != "get",
            });
        }
    }
    rpcs
}

/// Sets `path` (`task.name`) in `message`, creating the nested messages on the way.
fn set_path(message: &mut DynamicMessage, path: &[&str], value: String) {
    let field = message
        .descriptor()
        .get_field_by_name(path[0])
        .unwrap_or_else(|| panic!("no field {}", path[0]));
    if path.len() == 1 {
        message.set_field(&field, Value::String(value));
        return;
    }
    let mut nested = match message.get_field(&field).into_owned() {
        Value::Message(m) => m,
        _ => DynamicMessage::new(field.kind().as_message().expect("a message").clone()),
    };
    set_path(&mut nested, &path[1..], value);
    message.set_field(&field, Value::Message(nested));
}

/// Gives every unset REQUIRED field of `message` (and of the messages it holds) a value the
/// contract accepts, so that the request passes the contract check and reaches authorization.
fn fill_required(message: &mut DynamicMessage, fixture: &Fixture) {
    use prost_reflect::Kind;
    use taskmesh_mesh::validate::{behavior, has_behavior};
    for field in message.descriptor().fields() {
        let required = has_behavior(&field, behavior::REQUIRED);
        if message.has_field(&field) {
            if let Value::Message(mut inner) = message.get_field(&field).into_owned()
                && !inner
                    .descriptor()
                    .full_name()
                    .starts_with("google.protobuf.")
            {
                fill_required(&mut inner, fixture);
                message.set_field(&field, Value::Message(inner));
            }
            continue;
        }
        if !required {
            continue;
        }
        let value = match field.kind() {
            Kind::String => Value::String(match field.name() {
                "column" => fixture.name("projects/*/boards/*/columns/*"),
                "user" => "users/someone".to_owned(),
                "day" => "2026-01-31".to_owned(),
                _ => "Probe".to_owned(),
            }),
            Kind::Enum(kind) => Value::EnumNumber(
                kind.values()
                    .map(|v| v.number())
                    .find(|n| *n != 0)
                    .unwrap_or_default(),
            ),
            Kind::Message(kind) if kind.full_name() == "google.protobuf.Duration" => {
                let mut duration = DynamicMessage::new(kind);
                duration.set_field_by_name("seconds", Value::I64(60));
                Value::Message(duration)
            }
            Kind::Message(kind) => {
                let mut inner = DynamicMessage::new(kind);
                fill_required(&mut inner, fixture);
                Value::Message(inner)
            }
            other => panic!(
                "no sample for a REQUIRED {other:?} field {}",
                field.full_name()
            ),
        };
        message.set_field(&field, value);
    }
}

fn request(rpc: &Rpc, fixture: &Fixture) -> Bytes {
    let mut message = DynamicMessage::new(rpc.method.input());
    for (field, pattern) in &rpc.variables {
        let path: Vec<&str> = field.split('.').collect();
        set_path(&mut message, &path, fixture.name(pattern));
    }
    fill_required(&mut message, fixture);
    Bytes::from(message.encode_to_vec())
}

/// Calls `rpc` with `authorization` (or none) and returns the outcome as text for leak checks.
async fn call(
    channel: &Channel,
    rpc: &Rpc,
    body: Bytes,
    authorization: Option<&str>,
) -> (Code, String) {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let mut request = tonic::Request::new(body);
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().expect("ascii"));
    }
    let path = format!(
        "/{}/{}",
        rpc.method.parent_service().full_name(),
        rpc.method.name()
    );
    let outcome: Result<tonic::Response<Bytes>, Status> = grpc
        .unary(request, path.parse().expect("path"), RawCodec)
        .await;
    match outcome {
        Ok(response) => {
            let decoded = DynamicMessage::decode(rpc.method.output(), response.into_inner())
                .expect("a response message");
            (Code::Ok, format!("{decoded:?}"))
        }
        Err(status) => (
            status.code(),
            format!(
                "{} {}",
                status.message(),
                String::from_utf8_lossy(status.details())
            ),
        ),
    }
}

#[tokio::test]
async fn every_rpc_refuses_strangers_and_viewers_and_leaks_nothing() {
    let world = World::with(|l| l).await;
    world.add_member("val", Role::Viewer).await;
    let task = world.create(&format!("{SECRET} task")).await;
    let comment = world
        .client()
        .add_comment(as_user(
            OWNER,
            AddCommentRequest {
                request_id: String::new(),
                parent: task.name.clone(),
                comment: Some(Comment {
                    text: format!("{SECRET} comment"),
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("comment")
        .into_inner();
    let organization_id = format!("org-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    OrganizationServiceClient::new(world.projects_channel.clone())
        .create_organization(as_user(
            OWNER,
            CreateOrganizationRequest {
                organization_id: organization_id.clone(),
                organization: Some(Organization {
                    display_name: format!("{SECRET} org"),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("organization");
    let last = |name: &str| name.rsplit('/').next().unwrap_or_default().to_owned();
    let column = world.column(taskmesh_contracts::projects_v1::ColumnKind::Todo);
    let fixture = Fixture {
        ids: vec![
            ("projects", last(&world.project)),
            ("boards", last(&world.board)),
            ("columns", last(&column)),
            ("tasks", last(&task.name)),
            ("comments", last(&comment.name)),
            ("members", OWNER.to_owned()),
            ("organizations", organization_id.clone()),
        ],
    };
    let owner_ids = [last(&world.project), last(&task.name), organization_id];

    let pool = DescriptorPool::decode(taskmesh_contracts::FILE_DESCRIPTOR_SET).expect("pool");
    let rpcs = rpcs(&pool);
    assert!(
        rpcs.len() >= 40,
        "projects and tasks have {} RPCs",
        rpcs.len()
    );

    let foreign = format!("Bearer {}", sign(&foreign_key(), &claims(OWNER)));
    let expired = format!("Bearer {}", expired_token(OWNER));
    let stranger = format!("Bearer {}", token("mallory"));
    let viewer = format!("Bearer {}", token("val"));
    let unauthenticated: [(&str, Option<&str>); 4] = [
        ("no token", None),
        ("malformed token", Some("Bearer not.a.jwt")),
        ("expired token", Some(expired.as_str())),
        ("foreign key", Some(foreign.as_str())),
    ];

    let mut failures = Vec::new();
    for rpc in &rpcs {
        let channel = if rpc
            .method
            .parent_service()
            .full_name()
            .starts_with("taskmesh.tasks.")
        {
            &world.tasks_channel
        } else {
            &world.projects_channel
        };
        let body = request(rpc, &fixture);
        let targeted = !rpc.variables.is_empty();
        let mut check = |case: &str, (code, text): (Code, String), expected: Option<Code>| {
            if let Some(expected) = expected
                && code != expected
            {
                failures.push(format!(
                    "{} / {case}: {code:?}, expected {expected:?}: {text}",
                    rpc.method.full_name()
                ));
            }
            if text.contains(SECRET) {
                failures.push(format!(
                    "{} / {case}: leaks the owner's data: {text}",
                    rpc.method.full_name()
                ));
            }
            if !targeted && owner_ids.iter().any(|id| text.contains(id.as_str())) {
                failures.push(format!(
                    "{} / {case}: names the owner's resources: {text}",
                    rpc.method.full_name()
                ));
            }
        };
        for (case, authorization) in unauthenticated {
            let outcome = call(channel, rpc, body.clone(), authorization).await;
            check(case, outcome, Some(Code::Unauthenticated));
        }
        let outcome = call(channel, rpc, body.clone(), Some(&stranger)).await;
        check(
            "not a member",
            outcome,
            targeted.then_some(Code::PermissionDenied),
        );
        if rpc.writes {
            let outcome = call(channel, rpc, body.clone(), Some(&viewer)).await;
            check(
                "viewer writes",
                outcome,
                targeted.then_some(Code::PermissionDenied),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} refusals failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The fixture works for its owner, so the refusals above are about the caller, not the request.
    let owner = format!("Bearer {}", token(OWNER));
    let get_task = rpcs
        .iter()
        .find(|r| r.method.name() == "GetTask")
        .expect("GetTask");
    let (code, text) = call(
        &world.tasks_channel,
        get_task,
        request(get_task, &fixture),
        Some(&owner),
    )
    .await;
    assert_eq!(code, Code::Ok, "{text}");
    assert!(text.contains(SECRET));
}
