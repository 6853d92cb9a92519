//! `crd-check < resources.json`: every Istio and Gateway API resource in a JSON array is read into
//! the Rust types generated from that project's own CRD schemas (kube-custom-resources-rs) and
//! written back; a field the schema does not have is dropped on the way, a value of the wrong type
//! or outside an enum is refused, so any difference between the two is reported. Resources of other
//! groups are listed as not checked. Exit 1 when anything is wrong.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::ExitCode;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use kcr_gateway_networking_k8s_io::v1::grpcroutes::GrpcRoute;
use kcr_gateway_networking_k8s_io::v1::httproutes::HttpRoute;
use kcr_networking_istio_io::v1::{
    destinationrules::DestinationRule, gateways::Gateway, serviceentries::ServiceEntry,
    virtualservices::VirtualService,
};
use kcr_security_istio_io::v1::{
    authorizationpolicies::AuthorizationPolicy, peerauthentications::PeerAuthentication,
    requestauthentications::RequestAuthentication,
};

fn main() -> ExitCode {
    let mut input = String::new();
    if let Err(err) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("crd-check: reading stdin: {err}");
        return ExitCode::FAILURE;
    }
    let documents: Vec<Value> = match serde_json::from_str(&input) {
        Ok(documents) => documents,
        Err(err) => {
            eprintln!("crd-check: stdin is not a JSON array of resources: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut unchecked = BTreeSet::new();
    for document in &documents {
        let api = document["apiVersion"].as_str().unwrap_or_default();
        let kind = document["kind"].as_str().unwrap_or_default();
        let name = document["metadata"]["name"].as_str().unwrap_or_default();
        let outcome = match (api, kind) {
            ("networking.istio.io/v1", "DestinationRule") => {
                round_trip::<DestinationRule>(document)
            }
            ("networking.istio.io/v1", "VirtualService") => round_trip::<VirtualService>(document),
            ("networking.istio.io/v1", "Gateway") => round_trip::<Gateway>(document),
            ("networking.istio.io/v1", "ServiceEntry") => round_trip::<ServiceEntry>(document),
            ("security.istio.io/v1", "AuthorizationPolicy") => {
                round_trip::<AuthorizationPolicy>(document)
            }
            ("security.istio.io/v1", "PeerAuthentication") => {
                round_trip::<PeerAuthentication>(document)
            }
            ("security.istio.io/v1", "RequestAuthentication") => {
                round_trip::<RequestAuthentication>(document)
            }
            ("gateway.networking.k8s.io/v1", "GRPCRoute") => round_trip::<GrpcRoute>(document),
            ("gateway.networking.k8s.io/v1", "HTTPRoute") => round_trip::<HttpRoute>(document),
            _ => {
                unchecked.insert(format!("{api} {kind}"));
                continue;
            }
        };
        checked += 1;
        problems.extend(
            outcome
                .into_iter()
                .map(|problem| format!("{kind}/{name}: {problem}")),
        );
    }
    println!("checked {checked} resources against their CRD schemas");
    for kind in &unchecked {
        println!("no schema here for {kind}");
    }
    for problem in &problems {
        eprintln!("FAIL {problem}");
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What is wrong with `document` as a `T`: refused outright, or changed by reading and writing.
fn round_trip<T: DeserializeOwned + Serialize>(document: &Value) -> Vec<String> {
    let typed: T = match serde_json::from_value(document.clone()) {
        Ok(typed) => typed,
        Err(err) => return vec![err.to_string()],
    };
    let written = match serde_json::to_value(&typed) {
        Ok(written) => written,
        Err(err) => return vec![err.to_string()],
    };
    let mut found = Vec::new();
    differences(document, &written, "", &mut found);
    found
}

/// Every place where `written` lost or changed what `given` has.
fn differences(given: &Value, written: &Value, path: &str, found: &mut Vec<String>) {
    match (given, written) {
        (Value::Object(given), Value::Object(written)) => {
            for (key, value) in given {
                let at = format!("{path}.{key}");
                match written.get(key) {
                    Some(back) => differences(value, back, &at, found),
                    None => found.push(format!("{at} is not in the schema")),
                }
            }
        }
        (Value::Array(given), Value::Array(written)) if given.len() == written.len() => {
            for (i, (value, back)) in given.iter().zip(written).enumerate() {
                differences(value, back, &format!("{path}[{i}]"), found);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (given, written) if given == written => {}
        (given, written) => found.push(format!("{path}: {given} was read as {written}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_field_is_reported() {
        let rule = serde_json::json!({
            "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "tasks"},
            "spec": {"host": "tasks", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}, "retries": 3}}
        });
        assert_eq!(
            round_trip::<DestinationRule>(&rule),
            vec![".spec.trafficPolicy.retries is not in the schema"]
        );
    }

    #[test]
    fn a_value_outside_an_enum_is_refused() {
        let policy = serde_json::json!({
            "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "default"}, "spec": {"mtls": {"mode": "STRICTEST"}}
        });
        assert_eq!(round_trip::<PeerAuthentication>(&policy).len(), 1);
    }

    #[test]
    fn a_valid_route_reads_back_unchanged() {
        let route = serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
            "metadata": {"name": "tasks-reads-1", "annotations": {"timeout.linkerd.io/request": "30s"}},
            "spec": {
                "parentRefs": [{"group": "core", "kind": "Service", "name": "tasks", "port": 50053}],
                "rules": [{"matches": [{"method": {"type": "Exact", "service": "taskmesh.tasks.v1.TaskService", "method": "GetTask"}}]}]
            }
        });
        assert_eq!(round_trip::<GrpcRoute>(&route), Vec::<String>::new());
    }
}
