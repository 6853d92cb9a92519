//! Running one attempt of a job: a web crawl (fetch a page, find the query with its context) or an
//! HTTP request (check the expected status). Progress goes through a callback.

use std::collections::HashMap;

use taskmesh_contracts::execution_v1::{
    ExecutionResult, HttpResponse, WebCrawlResult, execution_result,
};
use taskmesh_contracts::tasks_v1::{HttpRequest, Job, WebCrawl, job::Kind};

/// Bytes of an HTTP response body kept in the result.
const MAX_BODY: usize = 64 * 1024;

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The request could not be made or answered.
    #[error("request failed: {0}")]
    Transport(String),
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

/// Runs one attempt; `progress(percent, message)` reports how far it got.
pub async fn run(
    client: &reqwest::Client,
    job: &Job,
    progress: impl AsyncFn(i32, &str),
) -> Result<ExecutionResult, JobError> {
    match &job.kind {
        Some(Kind::WebCrawl(crawl)) => crawl_page(client, crawl, progress).await,
        Some(Kind::HttpRequest(request)) => http_request(client, request, progress).await,
        None => Err(JobError::Invalid("the job has no kind".to_owned())),
    }
}

fn transport(err: &reqwest::Error) -> JobError {
    JobError::Transport(taskmesh_mesh::status::error_chain(err))
}

async fn crawl_page(
    client: &reqwest::Client,
    crawl: &WebCrawl,
    progress: impl AsyncFn(i32, &str),
) -> Result<ExecutionResult, JobError> {
    progress(10, "fetching the page").await;
    let response = client
        .get(&crawl.url)
        .send()
        .await
        .map_err(|e| transport(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(JobError::Status {
            status: status.as_u16(),
            expected: "2xx".to_owned(),
        });
    }
    let text = response.text().await.map_err(|e| transport(&e))?;
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
    client: &reqwest::Client,
    request: &HttpRequest,
    progress: impl AsyncFn(i32, &str),
) -> Result<ExecutionResult, JobError> {
    let method = if request.method.is_empty() {
        "GET".to_owned()
    } else {
        request.method.to_ascii_uppercase()
    };
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| JobError::Invalid(format!("method `{method}`")))?;
    let mut builder = client
        .request(method, &request.url)
        .body(request.body.clone());
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    progress(10, "sending the request").await;
    let response = builder.send().await.map_err(|e| transport(&e))?;
    let status = response.status().as_u16();
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
    let headers: HashMap<String, String> = response
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_owned(), v.to_owned()))
        })
        .collect();
    let mut body = response.bytes().await.map_err(|e| transport(&e))?.to_vec();
    body.truncate(MAX_BODY);
    Ok(ExecutionResult {
        kind: Some(execution_result::Kind::HttpResponse(HttpResponse {
            status: i32::from(status),
            headers,
            body,
        })),
    })
}
