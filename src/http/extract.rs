//! Extractors whose rejections answer in the `AppError` format instead of axum's plain text.

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::AppError;

/// `axum::Json`, rejecting bad bodies with `AppError`: 400 for malformed JSON, 415 without a
/// JSON content type, 422 for JSON of the wrong shape, 413 past the body limit.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct Json<T>(pub T);

/// Serialized into a `Vec` rather than axum's `BytesMut` writer, whose per-write overhead
/// dominated a year of bars (docs/benchmarks.md); the same bytes and headers otherwise.
impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => json_body(body),
            Err(error) => AppError::Internal(error.into()).into_response(),
        }
    }
}

/// A response of JSON already written: `Content-Type: application/json` and `body`.
pub fn json_body(body: impl Into<Body>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.into(),
    )
        .into_response()
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => Self::Validation(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => Self::BadRequest(e.body_text()),
            JsonRejection::MissingJsonContentType(e) => Self::UnsupportedMediaType(e.body_text()),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge(super::limits::current_body_limit())
            }
            other => Self::BadRequest(other.body_text()),
        }
    }
}

/// `axum::extract::Path`, rejecting a malformed segment (a bad UUID) with a 422 in the
/// `AppError` format instead of axum's plain text.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            PathRejection::FailedToDeserializePathParams(e) => Self::Validation(e.body_text()),
            other => Self::Internal(anyhow::anyhow!("path parameters: {}", other.body_text())),
        }
    }
}

/// `axum::extract::Query`, rejecting a query string of the wrong shape (an unknown parameter,
/// a repeated one) with a 400 in the `AppError` format.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}
