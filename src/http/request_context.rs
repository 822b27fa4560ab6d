//! Request correlation and the access log.
//!
//! Every request gets an id: the caller's `X-Request-ID` when it is a sane token (visible ASCII,
//! 1-128 characters), otherwise a new UUID v4. The id is echoed on every response, errors
//! included, and is a field of the request's log context (with its method and path), so every
//! log line written while serving the request carries it. One access line per request records
//! the outcome, and so do the request metrics when there are any ([`crate::metrics`]): timed
//! here, outermost, they see every answer, the limits' and CORS's refusals included.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use tower::{Layer, Service};

use super::{request_metrics, Inner, ResponseFuture};
use crate::metrics::{InFlight, Metrics};
use crate::telemetry::context;

/// The request-id header, read and written.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller-supplied request id kept.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The id of the request being served on this task, if any.
pub fn current_id() -> Option<String> {
    context::get("request_id")
}

/// The caller's id if it is a sane token; otherwise `None`.
pub fn accepted_id(value: &HeaderValue) -> Option<&str> {
    let bytes = value.as_bytes();
    let sane = !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic());
    sane.then(|| value.to_str().ok()).flatten()
}

/// A new id: a UUID v4 drawn from a fast thread-local generator. An id only has to be unique
/// enough to find a request's lines, not unpredictable; the OS generator would cost a system
/// call per request.
pub fn new_id() -> String {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_ne_bytes())
        .into_uuid()
        .to_string()
}

/// The outermost middleware: assigns the id, sets the request's log context, echoes the header,
/// writes the access line and records the request metrics (if any). A hand-written service
/// rather than `from_fn`, which boxes and clones the inner stack per request.
#[derive(Debug, Clone, Default)]
pub struct RequestContextLayer(pub Option<Arc<Metrics>>);

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestContext {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// The service of [`RequestContextLayer`].
#[derive(Debug, Clone)]
pub struct RequestContext<S> {
    inner: S,
    metrics: Option<Arc<Metrics>>,
}

impl<S: Inner> Service<Request> for RequestContext<S> {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let in_flight = self
            .metrics
            .as_ref()
            .map(|metrics| metrics.start(request.method()));
        let metered = in_flight.is_some();
        let id = request
            .headers()
            .get(&X_REQUEST_ID)
            .and_then(accepted_id)
            .map_or_else(new_id, str::to_owned);
        let header = HeaderValue::from_str(&id).ok();
        let fields = context::Fields::new(vec![
            ("request_id", id),
            ("method", request.method().as_str().to_owned()),
            ("path", request.uri().path().to_owned()),
        ]);
        // Called now, but polled inside the context: the inner layers only build futures here
        // (the limits layer answers its 413 from its future), so all their work, and logging,
        // happens with the id in place.
        let serve = self.inner.call(request);
        let answer = answer(serve, header, started, in_flight);
        if metered {
            Box::pin(context::scope(fields, request_metrics::scope(answer)))
        } else {
            Box::pin(context::scope(fields, answer))
        }
    }
}

/// The answer of `serve`, with the request id's header, counted in the metrics (if `in_flight`)
/// and logged.
async fn answer(
    serve: impl Future<Output = Result<Response, Infallible>>,
    header: Option<HeaderValue>,
    started: Instant,
    in_flight: Option<InFlight>,
) -> Result<Response, Infallible> {
    let Ok(mut response) = serve.await;
    if let Some(value) = header {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    let elapsed = started.elapsed();
    let status = response.status();
    if let Some(in_flight) = in_flight {
        in_flight.finish(request_metrics::take(), status, elapsed);
    }
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    tracing::info!(
        target: "access",
        status = status.as_u16(),
        duration_ms = (duration_ms * 1000.0).round() / 1000.0,
        "request"
    );
    Ok(response)
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

    #[test]
    fn new_ids_are_distinct_uuid_v4s() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(uuid.get_version_num(), 4, "{id}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{id}");
        }
    }
}
