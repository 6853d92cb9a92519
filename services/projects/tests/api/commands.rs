//! The kit's command line as an operator meets it in the projects binary: the commands every
//! service has, exit 64 for unknown ones, and the `outbox` command against a real database.

use std::process::Stdio;

use crate::helpers::{Stack, TestDatabase, service_binary};

/// The kit's command line: `--help` lists the commands every service has, an unknown argument
/// exits 64 (before anything is opened), and so does a command the service does not have.
#[test]
fn the_command_line_lists_the_kit_commands_and_refuses_unknown_ones_with_64() {
    let help = service_binary()
        .arg("--help")
        .output()
        .expect("run the service");
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for expected in ["serve", "dead-letters", "--config"] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert!(
        !text.contains("rebuild-read-model"),
        "a tasks command: {text}"
    );
    for args in [&["--no-such-flag"][..], &["rebuild-read-model"]] {
        let refused = service_binary().args(args).output().expect("run");
        assert_eq!(refused.status.code(), Some(64), "{args:?}");
    }
}

/// `projects outbox` as an operator runs it: lists the rows the relay set aside, puts one back in
/// line with `retry SEQ` or all with `retry --all` (exit 1 when there is none), and refuses
/// `retry` without a row with 64.
#[tokio::test]
async fn the_outbox_command_lists_and_retries_set_aside_rows() {
    let stack = Stack::load();
    let db = TestDatabase::create(&stack, "projects_test").await;
    let run = |args: &[&str]| {
        let output = service_binary()
            .args(args)
            .env("TASKMESH_VAULT__ADDR", &stack.vault_addr)
            .env("TASKMESH_VAULT__AUTH", "token")
            .env("TASKMESH_VAULT__TOKEN", &stack.vault_root_token)
            .env("TASKMESH_VAULT__SECRET_PATH", &db.secret_path)
            .env("TASKMESH_DATABASE__PORT", stack.pg_port.to_string())
            .env("TASKMESH_TELEMETRY__LOG_LEVEL", "off")
            .stdin(Stdio::null())
            .output()
            .expect("run projects outbox");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // The first run migrates: an empty list.
    let (code, listed, _) = run(&["outbox"]);
    assert_eq!(code, Some(0));
    assert_eq!(listed.lines().count(), 1, "only the heading: {listed}");

    let mut conn = db.connect(&stack).await;
    for (subject, error) in [
        ("taskmesh.projects.v1.projectCreated", "no stream"),
        ("taskmesh.projects.v1.projectUpdated", "too large"),
    ] {
        sqlx::query(
            "INSERT INTO mesh_outbox (event_id, subject, event_type, resource, payload, correlation_id, \
             occurred_at, attempts, last_error, set_aside_at) \
             VALUES ($1, $2, 'taskmesh.projects.v1.Test', 'projects/p', '\\x00', 'c', now(), 5, $3, now())",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(subject)
        .bind(error)
        .execute(&mut conn)
        .await
        .expect("a set-aside row");
    }
    let (code, listed, _) = run(&["outbox", "set-aside"]);
    assert_eq!(code, Some(0));
    assert!(
        listed.contains("taskmesh.projects.v1.projectCreated") && listed.contains("no stream"),
        "{listed}"
    );
    let first: String = listed
        .lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().next())
        .expect("a seq")
        .to_owned();

    assert_eq!(run(&["outbox", "retry"]).0, Some(64), "a row or --all");
    let (code, out, _) = run(&["outbox", "retry", &first]);
    assert_eq!(code, Some(0));
    assert!(out.contains("1 outbox row"), "{out}");
    let (code, out, _) = run(&["outbox", "retry", "--all"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("1 outbox row"), "{out}");
    let (code, _, err) = run(&["outbox", "retry", "--all"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no set-aside row"), "{err}");
    let (_, listed, _) = run(&["outbox"]);
    assert_eq!(listed.lines().count(), 1, "none left: {listed}");
}
