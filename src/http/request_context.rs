//! Request correlation and the access log.
//!
//! Every request gets an id: the caller's `X-Request-ID` when it is a sane token (visible ASCII,
//! 1-128 characters), otherwise a new UUID v4. The id is echoed on every response, errors
//! included, and is a field of the request's span, so every log line written while serving the
//! request carries it. One access line per request records the outcome.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The request-id header, read and written.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller-supplied request id kept.
pub const MAX_REQUEST_ID_LEN: usize = 128;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served on this task, if any.
pub fn current_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The caller's id if it is a sane token; otherwise `None`.
pub fn accepted_id(value: &HeaderValue) -> Option<&str> {
    let bytes = value.as_bytes();
    let sane = !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic());
    sane.then(|| value.to_str().ok()).flatten()
}

/// Middleware: assigns the id, opens the request span, echoes the header, writes the access line.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(accepted_id)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        user_id = tracing::field::Empty,
    );

    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;

    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    let status = response.status().as_u16();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        tracing::info!(
            target: "access",
            status,
            duration_ms = (duration_ms * 1000.0).round() / 1000.0,
            "request"
        );
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_and_others_refused() {
        let ok = HeaderValue::from_static("req-123_ABC.~!");
        assert_eq!(accepted_id(&ok), Some("req-123_ABC.~!"));
        for bad in ["", "has space", "tab\there"] {
            assert_eq!(
                accepted_id(&HeaderValue::from_str(bad).unwrap()),
                None,
                "{bad:?}"
            );
        }
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        assert_eq!(accepted_id(&HeaderValue::from_str(&long).unwrap()), None);
        let exact = "a".repeat(MAX_REQUEST_ID_LEN);
        assert!(accepted_id(&HeaderValue::from_str(&exact).unwrap()).is_some());
        let non_ascii = HeaderValue::from_bytes("café".as_bytes()).unwrap();
        assert_eq!(accepted_id(&non_ascii), None);
    }
}
