//! `AppError`: the one error type of the HTTP layer, and its JSON body
//! `{"error": {"code": "...", "message": "...", "request_id": "..."}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::request_context;
use crate::telemetry;

/// Everything a handler or middleware can answer with instead of success. User-facing variants
/// carry a stable machine-readable `code`; internal failures are collapsed into an opaque 500
/// whose cause is logged once, with the request id, and never sent.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request cannot be parsed (malformed JSON, a bad query string).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no bearer token, or one that is malformed, expired, wrongly signed or revoked, or
    /// a failed login. Sent with `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but not allowed (a user on an admin route).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such route or resource.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, the method does not.
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    /// 409: the resource already exists (a unique constraint said so).
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than `REQUEST_BODY_LIMIT_BYTES`.
    #[error("the request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// 415: a JSON body without `Content-Type: application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed input that fails validation.
    #[error("{0}")]
    Validation(String),
    /// 429: too many attempts; `Retry-After` says how many seconds to wait.
    #[error("too many attempts; retry in {0} s")]
    TooManyRequests(u64),
    /// 503: the request did not finish within `REQUEST_TIMEOUT_SECONDS`.
    #[error("the request did not complete within {0} s")]
    Timeout(u64),
    /// 503: too much work is waiting (password verifications); `Retry-After` says how many
    /// seconds to wait.
    #[error("the service is busy; retry in {0} s")]
    Overloaded(u64),
    /// 503: a dependency (the database) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 500: anything else. The cause is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// `error` as a 409 saying `message` when it is a unique violation of `constraint` (a
    /// second row where one is allowed); any other database error as [`From<sqlx::Error>`]
    /// has it.
    pub fn conflict_on(
        error: sqlx::Error,
        constraint: &str,
        message: impl FnOnce() -> String,
    ) -> Self {
        if crate::db::is_unique_violation(&error, constraint) {
            Self::Conflict(message())
        } else {
            error.into()
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Timeout(_) | Self::Overloaded(_) | Self::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code clients branch on. Never change one; add new ones.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::TooManyRequests(_) => "too_many_requests",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Validation(_) => "validation_failed",
            Self::Timeout(_) => "timeout",
            Self::Overloaded(_) | Self::Unavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut => {
                Self::Unavailable("the database is unavailable; try again shortly".to_owned())
            }
            other => Self::Internal(other.into()),
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// The fields of an error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// The request's `X-Request-ID`, to quote when reporting a problem.
    pub request_id: Option<String>,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Internal(cause) => {
                tracing::error!(error = telemetry::anyhow_chain(cause), "internal error");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
                request_id: request_context::current_id(),
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            // RFC 6750: a 401 names the scheme the client should use.
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::TooManyRequests(seconds) | Self::Overloaded(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            _ => {}
        }
        response
    }
}
