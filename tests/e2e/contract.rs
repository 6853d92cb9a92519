//! The contract suite: schemathesis (PyPI) reads the gateway's `/openapi.json` and sends every
//! operation generated requests, valid and invalid (its `examples`, `coverage` and `fuzzing`
//! phases), with a real user's token, against every service of a real platform. It fails on any
//! check that fails: a 5xx, a valid request refused, an invalid one accepted, a response that is
//! not what the document says, a 405 without `Allow`, ...
//!
//! What a schema cannot say is handed to the tool's own mechanisms (`tests/contract/hooks.py`):
//! job URLs stay on the loopback address, an API key's expiry lies ahead, and positive cases send
//! no `filter`, `orderBy`, `pageToken` or `updateMask` (grammars stated in prose). The platform's
//! quotas and rate limits are raised so that state a request cannot see does not refuse it.

use std::process::Command;

use taskmesh_testing::Stack;

use crate::harness::{Platform, ROOMY_RATE_LIMITS, Rest, roomy_limits};

/// Generated cases per operation and phase.
const MAX_EXAMPLES: &str = "15";

/// Quotas no generated run reaches: a refusal by quota is state, not contract.
/// The number before `label` in schemathesis' summary (`3981 generated`, `Tested: 63`).
fn count(text: &str, label: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix(label) {
            return rest.split_whitespace().next()?.parse().ok();
        }
        let (number, rest) = line.split_once(' ')?;
        rest.starts_with(label)
            .then(|| number.parse().ok())
            .flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_holds_its_openapi_contract_under_schemathesis() {
    let stack = Stack::load();
    let platform = Platform::start_with(&stack, &roomy_limits(), ROOMY_RATE_LIMITS).await;
    let mut rest = Rest::new(&platform.base);
    let session = rest.register("contract", "correct horse battery").await;
    let token = session["accessToken"].as_str().expect("token");

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("buf.yaml").is_file())
        .expect("the repository root");
    let output = Command::new(stack.bin("schemathesis"))
        .arg("run")
        .arg(format!("{}/openapi.json", platform.base))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--workers", "1"])
        .args(["--request-timeout", "30"])
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", root.join("tests/contract"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let operations = count(&stdout, "Tested:");
    let cases = count(&stdout, "generated");
    println!("schemathesis: {operations:?} operations, {cases:?} generated cases\n{stdout}");
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{stderr}"
    );
    assert!(
        operations.is_some_and(|n| n >= 60),
        "every operation is tested: {operations:?}"
    );
    assert!(cases.is_some_and(|n| n > 1000), "cases: {cases:?}");
    platform.clean_up();
}
