//! Secrets inside a task template's job (the secret headers of an HTTP request job, see
//! `taskmesh_mesh::sealed`): sealed for the schedule when the template is set, so the database
//! and every `ScheduleTriggered` hold them only sealed; readers see them redacted. The tasks
//! service opens them for the schedule and seals them again for each task it creates.

use std::collections::HashMap;

use taskmesh_contracts::scheduler_v1::{Action, action};
use taskmesh_contracts::tasks_v1::job::Kind;
use taskmesh_mesh::sealed::{Sealer, redact_headers};

fn headers(action: &mut Action) -> Option<&mut HashMap<String, String>> {
    let Some(action::Kind::CreateTask(template)) = action.kind.as_mut() else {
        return None;
    };
    match template.job.as_mut()?.kind.as_mut()? {
        Kind::HttpRequest(request) => Some(&mut request.headers),
        Kind::WebCrawl(_) => None,
    }
}

/// Seals the secret headers of `action`'s job for `schedule`; a header sent back redacted keeps
/// its value from `previous` (the action as stored).
pub fn seal(sealer: &Sealer, schedule: &str, action: &mut Action, previous: Option<&Action>) {
    let mut previous = previous.cloned();
    let kept = previous.as_mut().and_then(headers).map(|h| h.clone());
    if let Some(headers) = headers(action) {
        sealer.seal_headers(schedule, headers, kept.as_ref());
    }
}

/// The action as a reader sees it: its job's secret headers redacted.
pub fn shown(mut action: Action) -> Action {
    if let Some(headers) = headers(&mut action) {
        redact_headers(headers);
    }
    action
}
