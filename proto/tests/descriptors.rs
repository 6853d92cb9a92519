//! The encoded descriptor set is what reflection and the gateway read: it must carry every
//! contract, every service and the `google.api.http` rule of every RPC.

use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use taskmesh_contracts::FILE_DESCRIPTOR_SET;

fn pool() -> DescriptorPool {
    DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("the descriptor set decodes")
}

fn http_rule(
    pool: &DescriptorPool,
    method: &prost_reflect::MethodDescriptor,
) -> Option<DynamicMessage> {
    let extension = pool
        .get_extension_by_name("google.api.http")
        .expect("google.api.http is defined");
    let options = method.options();
    if !options.has_extension(&extension) {
        return None;
    }
    match options.get_extension(&extension).as_ref() {
        Value::Message(rule) => Some(rule.clone()),
        _ => None,
    }
}

#[test]
fn every_taskmesh_rpc_carries_a_google_api_http_rule() {
    let pool = pool();
    let services: Vec<_> = pool
        .services()
        .filter(|s| s.full_name().starts_with("taskmesh."))
        .collect();
    assert!(services.len() >= 4, "the projects services are in the set");
    let mut methods = 0;
    for service in services {
        for method in service.methods() {
            methods += 1;
            let rule = http_rule(&pool, &method)
                .unwrap_or_else(|| panic!("{} has no google.api.http rule", method.full_name()));
            let path = ["get", "put", "post", "delete", "patch"]
                .iter()
                .filter(|verb| rule.has_field_by_name(verb))
                .find_map(|verb| rule.get_field_by_name(verb)?.as_str().map(str::to_owned));
            let bound =
                path.is_some_and(|p| p.starts_with("/v1/")) || rule.has_field_by_name("custom");
            assert!(
                bound,
                "{} has an HTTP verb and a /v1/ path",
                method.full_name()
            );
        }
    }
    assert!(methods >= 29, "found {methods} RPCs");
}

#[test]
fn custom_methods_and_bodies_survive_encoding() {
    let pool = pool();
    let method = pool
        .get_service_by_name("taskmesh.projects.v1.ProjectService")
        .expect("service")
        .methods()
        .find(|m| m.name() == "UndeleteProject")
        .expect("method");
    let rule = http_rule(&pool, &method).expect("rule");
    assert_eq!(
        rule.get_field_by_name("post")
            .and_then(|v| v.as_str().map(str::to_owned))
            .as_deref(),
        Some("/v1/{name=projects/*}:undelete")
    );
    assert_eq!(
        rule.get_field_by_name("body")
            .and_then(|v| v.as_str().map(str::to_owned))
            .as_deref(),
        Some("*")
    );
}

#[test]
fn field_behaviors_and_resources_are_kept() {
    let pool = pool();
    let project = pool
        .get_message_by_name("taskmesh.projects.v1.Project")
        .expect("Project");
    let resource = pool
        .get_extension_by_name("google.api.resource")
        .expect("google.api.resource");
    assert!(project.options().has_extension(&resource));
    let behavior = pool
        .get_extension_by_name("google.api.field_behavior")
        .expect("google.api.field_behavior");
    let create_time = project.get_field_by_name("create_time").expect("field");
    assert!(create_time.options().has_extension(&behavior));
}

#[test]
fn error_detail_messages_are_in_the_set() {
    let pool = pool();
    for name in [
        "google.rpc.Status",
        "google.rpc.ErrorInfo",
        "google.rpc.BadRequest",
    ] {
        assert!(pool.get_message_by_name(name).is_some(), "{name}");
    }
}
