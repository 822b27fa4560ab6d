//! Request limits: body size (`REQUEST_BODY_LIMIT_BYTES`) and time (`REQUEST_TIMEOUT_SECONDS`).

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::header::CONTENT_LENGTH;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::error::AppError;
use super::{Inner, ResponseFuture};

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

/// The layer enforcing [`Limits`]: rejects a declared `Content-Length` over the limit before
/// any route runs (so even an unknown route answers 413 rather than reading the body), and
/// bounds the time the rest may take. Bodies without a length are cut off at the same limit by
/// the extractors (`DefaultBodyLimit`, set to the same value in `with_middleware`).
#[derive(Debug, Clone, Copy)]
pub struct LimitsLayer(pub Limits);

impl<S> Layer<S> for LimitsLayer {
    type Service = Enforce<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Enforce {
            inner,
            limits: self.0,
        }
    }
}

/// The service of [`LimitsLayer`].
#[derive(Debug, Clone)]
pub struct Enforce<S> {
    inner: S,
    limits: Limits,
}

impl<S: Inner> Service<Request> for Enforce<S> {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let limits = self.limits;
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limits.body_bytes as u64) {
            // From the future, not now: polled, it runs inside the request's log context.
            return Box::pin(async move {
                Ok(AppError::PayloadTooLarge(limits.body_bytes).into_response())
            });
        }
        let run = BODY_LIMIT.scope(limits.body_bytes, self.inner.call(request));
        Box::pin(async move {
            match tokio::time::timeout(limits.timeout, run).await {
                Ok(response) => response,
                Err(_) => {
                    tracing::warn!(timeout_s = limits.timeout.as_secs(), "request timed out");
                    Ok(AppError::Timeout(limits.timeout.as_secs()).into_response())
                }
            }
        })
    }
}
