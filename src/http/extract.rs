//! Extractors whose rejections answer in the `AppError` format instead of axum's plain text.

use std::error::Error as _;

use axum::body::Body;
use axum::extract::rejection::{JsonDataError, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::AppError;
use crate::domain;

/// `axum::Json`, rejecting bad bodies with `AppError`: 400 for malformed JSON, 415 without a
/// JSON content type, 422 for JSON of the wrong shape or a field its domain rule refuses, 413
/// past the body limit.
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
            JsonRejection::JsonDataError(e) => {
                Self::Validation(rule_message(&e).unwrap_or_else(|| e.body_text()))
            }
            JsonRejection::JsonSyntaxError(e) => Self::BadRequest(e.body_text()),
            JsonRejection::MissingJsonContentType(e) => Self::UnsupportedMediaType(e.body_text()),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge(super::limits::current_body_limit())
            }
            other => Self::BadRequest(other.body_text()),
        }
    }
}

/// A field's refusal by its domain rule (`crate::domain`) as the rule words it everywhere:
/// `quantity: must not be zero`, not axum's "Failed to deserialize the JSON body into the target
/// type: quantity: must not be zero at line 1 column 40". `None` for serde's own messages.
fn rule_message(rejection: &JsonDataError) -> Option<String> {
    let mut source = rejection.source();
    while let Some(error) = source {
        if let Some(error) = error.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>() {
            let inner = error.inner();
            let text = inner.to_string();
            let position = format!(" at line {} column {}", inner.line(), inner.column());
            let message = text.strip_suffix(&position).unwrap_or(&text);
            return domain::is_rule_message(message)
                .then(|| format!("{}: {message}", error.path()));
        }
        source = error.source();
    }
    None
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

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::domain::{Quantity, Symbol};

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        symbol: Symbol,
        quantity: Quantity,
    }

    fn message(body: &str) -> String {
        let rejection = axum::Json::<Body>::from_bytes(body.as_bytes()).unwrap_err();
        let error = AppError::from(rejection);
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        error.to_string()
    }

    #[test]
    fn a_field_its_rule_refuses_is_named_before_the_rules_message() {
        assert_eq!(
            message(r#"{"symbol": "AAPL", "quantity": "0"}"#),
            "quantity: must not be zero"
        );
        assert_eq!(
            message(r#"{"symbol": "aapl", "quantity": 1}"#),
            "symbol: expected an upper-case ticker such as AAPL or BRK.B (letters, digits and . \
             - ^, at most 20), got \"aapl\""
        );
    }

    #[test]
    fn a_body_of_the_wrong_shape_keeps_axums_message() {
        let text = message(r#"{"symbol": 5, "quantity": 1}"#);
        assert!(
            text.starts_with(
                "Failed to deserialize the JSON body into the target type: symbol: \
                 invalid type"
            ),
            "{text}"
        );
        assert!(message(r#"{"symbol": "AAPL"}"#).contains("missing field `quantity`"));
    }
}
