//! `sigmasight healthcheck`: the container's HEALTHCHECK. The runtime image has no shell and no
//! curl, so the binary checks itself.

use std::time::Duration;

/// How long the whole check may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// GETs `http://127.0.0.1:{port}/health`; `Ok` on 200, otherwise a sentence saying what failed.
pub async fn check(port: u16) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}/health");
    // A proxy configured in the environment must never see a loopback probe.
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url} failed: {}", without_url(&e)))?;
    match response.status() {
        reqwest::StatusCode::OK => Ok(()),
        status => Err(format!("GET {url} answered {status}")),
    }
}

fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection refused or unreachable"
    } else {
        "request error"
    };
    kind.to_owned()
}
