//! CORS for the browser front ends of `CORS_ALLOWED_ORIGINS`, by tower-http, applied only to
//! requests that carry an `Origin` header.
//!
//! A request without `Origin` (curl, a server, a health probe) is not a CORS request: the CORS
//! layer would only add `Vary` and an `Access-Control-Expose-Headers` that means nothing
//! without `Access-Control-Allow-Origin`. Those requests skip the layer and get the same `Vary`,
//! so a cache never serves a response made for one origin to another.
//!
//! A script on an allowed origin may send and read exactly the headers of `api_headers`, on top
//! of those the Fetch standard lets through anyway.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::Response;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use super::request_context::X_REQUEST_ID;
use super::{Inner, ResponseFuture};

/// What every response says it varies by: the request headers CORS answers depend on.
const VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

/// Which way a header of the API travels between a browser script and the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// The script sends it and a handler or middleware reads it.
    Request,
    /// The service sends it and the script may read it.
    Response,
    /// Both.
    Both,
}

/// Every header a script needs CORS to let through: the request headers the API reads and the
/// response headers it writes, except those the Fetch standard already allows (`Accept`; on a
/// response `Cache-Control`, `Content-Length`, `Content-Type`) or that a script cannot set
/// (`Content-Length`). A header the API starts to read or write belongs here: a header parameter
/// or response header of the OpenAPI document that is missing fails a test (`tests/api/cors.rs`).
fn api_headers() -> [(HeaderName, Way); 7] {
    [
        // Bearer tokens (`auth.rs`).
        (header::AUTHORIZATION, Way::Request),
        // `application/json` is not one of the content types a script may send unasked.
        (header::CONTENT_TYPE, Way::Request),
        // Conditional bar lists (`prices`): the `ETag` read, then sent back for a 304.
        (header::IF_NONE_MATCH, Way::Request),
        (header::ETAG, Way::Response),
        // On every 401 and every 429 (`error.rs`).
        (header::WWW_AUTHENTICATE, Way::Response),
        (header::RETRY_AFTER, Way::Response),
        // The caller's own id, echoed on every response (`request_context.rs`).
        (X_REQUEST_ID.clone(), Way::Both),
    ]
}

/// The names of [`api_headers`] that travel `way`.
fn headers(way: Way) -> Vec<HeaderName> {
    api_headers()
        .into_iter()
        .filter(|(_, w)| *w == way || *w == Way::Both)
        .map(|(name, _)| name)
        .collect()
}

/// The layer: tower-http's CORS for `origins`, behind the `Origin` check.
#[derive(Clone)]
pub struct CorsLayerForBrowsers(CorsLayer);

impl CorsLayerForBrowsers {
    /// CORS for these origins (exact `scheme://host[:port]` strings).
    pub fn new(origins: &[String]) -> Self {
        // A predicate over shared data rather than `AllowOrigin::list`: the layer is cloned per
        // request, and a list would be copied each time.
        let origins: Arc<[HeaderValue]> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        Self(
            CorsLayer::new()
                .allow_origin(AllowOrigin::predicate(move |origin, _| {
                    origins.contains(origin)
                }))
                .allow_methods([
                    Method::GET,
                    Method::POST,
                    Method::PUT,
                    Method::PATCH,
                    Method::DELETE,
                    Method::OPTIONS,
                ])
                .allow_headers(headers(Way::Request))
                .expose_headers(headers(Way::Response))
                .max_age(Duration::from_secs(600)),
        )
    }
}

impl<S> Layer<S> for CorsLayerForBrowsers {
    type Service = CorsForBrowsers<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorsForBrowsers(self.0.layer(inner))
    }
}

/// The service of [`CorsLayerForBrowsers`].
#[derive(Clone)]
pub struct CorsForBrowsers<S>(Cors<S>);

impl<S: Inner> Service<Request> for CorsForBrowsers<S> {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.headers().contains_key(header::ORIGIN) {
            return Box::pin(self.0.call(request));
        }
        // `Cors::poll_ready` readied the inner service: it may be called directly.
        let response = self.0.get_mut().call(request);
        Box::pin(async move {
            let Ok(mut response) = response.await;
            response.headers_mut().append(header::VARY, VARY);
            Ok(response)
        })
    }
}
