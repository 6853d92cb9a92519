//! Running one attempt of a job: a web crawl (fetch a page, find the query with its context) or an
//! HTTP request (check the expected status). Every request goes out through the egress client
//! (`taskmesh_mesh::egress`), whose policy decides where a job may reach; a refused destination
//! fails the attempt without a connection. Progress goes through a callback.

use std::collections::HashMap;

use taskmesh_contracts::execution_v1::{
    ExecutionResult, HttpResponse, WebCrawlResult, execution_result,
};
use taskmesh_contracts::tasks_v1::{HttpRequest, Job, WebCrawl, job::Kind};
use taskmesh_mesh::egress::{Egress, EgressError, EgressRequest};
use taskmesh_mesh::sealed::{Sealer, redact_headers};

/// Bytes of an HTTP response body kept in the result.
const MAX_BODY: usize = 64 * 1024;

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The request could not be made or answered.
    #[error("request failed: {0}")]
    Transport(String),
    /// The destination is not one a job may reach.
    #[error("destination refused: {0}")]
    Refused(String),
    /// The server answered with another status.
    #[error("unexpected status {status} (expected {expected})")]
    Status {
        /// What came back.
        status: u16,
        /// What was expected.
        expected: String,
    },
    /// The job is malformed.
    #[error("invalid job: {0}")]
    Invalid(String),
}

impl From<EgressError> for JobError {
    fn from(err: EgressError) -> Self {
        match err {
            EgressError::Refused(reason) => Self::Refused(reason),
            other => Self::Transport(other.to_string()),
        }
    }
}

impl JobError {
    /// Whether another attempt could end differently (a refused destination stays refused).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Refused(_) | Self::Invalid(_))
    }
}

fn secret_headers(job: &mut Job) -> Option<&mut HashMap<String, String>> {
    match job.kind.as_mut()? {
        Kind::HttpRequest(request) => Some(&mut request.headers),
        Kind::WebCrawl(_) => None,
    }
}

/// `job` of task `task` with its sealed secrets opened, to run it; a secret that does not open
/// (another key, another task, altered) fails the execution without a retry.
pub fn opened(sealer: &Sealer, task: &str, job: &Job) -> Result<Job, JobError> {
    let mut job = job.clone();
    if let Some(headers) = secret_headers(&mut job) {
        sealer
            .open_headers(task, headers)
            .map_err(|(header, err)| {
                JobError::Invalid(format!("the sealed value of header `{header}`: {err}"))
            })?;
    }
    Ok(job)
}

/// `job` of task `task` with every secret header sealed (values sealed for this task already are
/// kept): what is stored, whoever published the job.
pub fn sealed(sealer: &Sealer, task: &str, mut job: Job) -> Job {
    if let Some(headers) = secret_headers(&mut job) {
        sealer.seal_headers(task, headers, None);
    }
    job
}

/// `job` as a reader sees it: its secret headers redacted.
pub fn redacted(mut job: Job) -> Job {
    if let Some(headers) = secret_headers(&mut job) {
        redact_headers(headers);
    }
    job
}

/// Runs one attempt; `progress(percent, message)` reports how far it got.
pub async fn run(
    egress: &Egress,
    job: &Job,
    progress: impl AsyncFn(i32, &str),
) -> Result<ExecutionResult, JobError> {
    match &job.kind {
        Some(Kind::WebCrawl(crawl)) => crawl_page(egress, crawl, progress).await,
        Some(Kind::HttpRequest(request)) => http_request(egress, request, progress).await,
        None => Err(JobError::Invalid("the job has no kind".to_owned())),
    }
}

async fn crawl_page(
    egress: &Egress,
    crawl: &WebCrawl,
    progress: impl AsyncFn(i32, &str),
) -> Result<ExecutionResult, JobError> {
    progress(10, "fetching the page").await;
    let response = egress
        .send(&EgressRequest {
            url: crawl.url.clone(),
            ..Default::default()
        })
        .await?;
    if !(200..300).contains(&response.status) {
        return Err(JobError::Status {
            status: response.status,
            expected: "2xx".to_owned(),
        });
    }
    // The page as read (the egress client caps it); a multi-byte character cut at the cap is dropped.
    let text = String::from_utf8_lossy(&response.body);
    progress(60, "searching the page").await;
    let (match_count, matches) = crate::domain::find(&text, &crawl.query);
    Ok(ExecutionResult {
        kind: Some(execution_result::Kind::WebCrawl(WebCrawlResult {
            match_count,
            matches,
        })),
    })
}

async fn http_request(
    egress: &Egress,
    request: &HttpRequest,
    progress: impl AsyncFn(i32, &str),
) -> Result<ExecutionResult, JobError> {
    progress(10, "sending the request").await;
    let response = egress
        .send(&EgressRequest {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: request.body.clone(),
        })
        .await?;
    let status = response.status;
    let expected_ok = if request.expected_status == 0 {
        (200..300).contains(&status)
    } else {
        i32::from(status) == request.expected_status
    };
    if !expected_ok {
        return Err(JobError::Status {
            status,
            expected: if request.expected_status == 0 {
                "2xx".to_owned()
            } else {
                request.expected_status.to_string()
            },
        });
    }
    let headers: HashMap<String, String> = response.headers.into_iter().collect();
    let mut body = response.body;
    body.truncate(MAX_BODY);
    Ok(ExecutionResult {
        kind: Some(execution_result::Kind::HttpResponse(HttpResponse {
            status: i32::from(status),
            headers,
            body,
        })),
    })
}
