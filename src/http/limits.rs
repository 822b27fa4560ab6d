//! Request limits: body size (`REQUEST_BODY_LIMIT_BYTES`) and time (`REQUEST_TIMEOUT_SECONDS`).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::AppError;

tokio::task_local! {
    static BODY_LIMIT: usize;
}

/// The body limit of the request being served, for the 413 message of body extractors.
pub fn current_body_limit() -> usize {
    BODY_LIMIT.try_with(|limit| *limit).unwrap_or_default()
}

/// The limits one router enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest body, in bytes.
    pub body_bytes: usize,
    /// Longest a request may take.
    pub timeout: Duration,
}

/// Rejects a declared `Content-Length` over the limit before any route runs (so even an unknown
/// route answers 413 rather than reading the body), and bounds the time the rest may take.
/// Bodies without a length are cut off at the same limit by the extractors
/// (`DefaultBodyLimit`, set to the same value in `router`).
pub async fn enforce(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limits.body_bytes as u64) {
        return AppError::PayloadTooLarge(limits.body_bytes).into_response();
    }
    let run = BODY_LIMIT.scope(limits.body_bytes, next.run(request));
    match tokio::time::timeout(limits.timeout, run).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout_s = limits.timeout.as_secs(), "request timed out");
            AppError::Timeout(limits.timeout.as_secs()).into_response()
        }
    }
}
