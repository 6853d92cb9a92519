//! Secrets inside a task's job (the secret headers of an HTTP request job, see
//! `taskmesh_mesh::sealed`): sealed when the job is set, so every event, the event store, the read
//! model, executions and dead letters hold them only sealed; readers see them redacted.

use std::collections::HashMap;

use taskmesh_contracts::tasks_v1::{Job, Task, job::Kind};
use taskmesh_mesh::sealed::{Sealer, redact_headers};

/// The headers of `job` when it is an HTTP request.
pub fn headers(job: &mut Option<Job>) -> Option<&mut HashMap<String, String>> {
    match job.as_mut()?.kind.as_mut()? {
        Kind::HttpRequest(request) => Some(&mut request.headers),
        Kind::WebCrawl(_) => None,
    }
}

/// Seals the secret headers of `job`, set on task `task`; a header sent back as redacted keeps
/// its value from `previous` (the job as stored).
pub fn seal_job(sealer: &Sealer, task: &str, job: &mut Option<Job>, previous: Option<&Job>) {
    let previous = match previous.and_then(|p| p.kind.as_ref()) {
        Some(Kind::HttpRequest(request)) => Some(&request.headers),
        _ => None,
    };
    if let Some(headers) = headers(job) {
        sealer.seal_headers(task, headers, previous);
    }
}

/// The task as a reader sees it: its job's secret headers redacted.
pub fn shown(mut task: Task) -> Task {
    if let Some(headers) = headers(&mut task.job) {
        redact_headers(headers);
    }
    task
}
