//! Response compression, by tower-http: a JSON body of at least [`MIN_COMPRESSED_BYTES`] is sent
//! zstd-, brotli- or gzip-encoded, whichever the request's `Accept-Encoding` weighs highest (at
//! equal weight zstd, then br, then gzip); with no `Accept-Encoding`, `identity`, or only
//! `q=0` for the three, it is sent as it is. A body that already has a `Content-Encoding` is
//! never encoded again.
//!
//! Whether a body is encoded depends on its size, which a cache cannot know from the request, so
//! every JSON response says `Vary: accept-encoding`, encoded or not, and so does every 304 (the
//! bodiless answer to a conditional bar list): a cache never hands an encoded body to a client
//! that did not ask for one. The bar lists' `ETag`s are weak (`prices`) because the encodings of
//! one answer differ byte for byte.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use tower::{Layer, Service};
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::{Compression, CompressionLayer};

use super::{Inner, ResponseFuture};

/// The smallest body that is compressed. A body under about one packet (a 1,500-byte Ethernet
/// MTU) crosses the network in as many packets either way, so encoding it saves no round trip
/// and costs CPU on both ends, and the encoders' framing can make a tiny body larger: `/health`
/// and single errors stay as they are, bar lists of more than a few bars and the OpenAPI
/// document are compressed.
pub const MIN_COMPRESSED_BYTES: u16 = 1024;

/// `Vary`'s value for the encodings.
const VARY_ACCEPT_ENCODING: HeaderValue = HeaderValue::from_static("accept-encoding");

/// Whether a response is JSON (`application/json`, parameters allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

/// What is compressed: JSON bodies of [`MIN_COMPRESSED_BYTES`] or more.
#[derive(Debug, Clone, Copy)]
pub struct LargeJson;

impl Predicate for LargeJson {
    fn should_compress<B: HttpBody>(&self, response: &axum::http::Response<B>) -> bool {
        is_json(response.headers())
            && SizeAbove::new(MIN_COMPRESSED_BYTES).should_compress(response)
    }
}

/// The layer: tower-http's compression of [`LargeJson`] bodies, and `Vary` on every response a
/// cache must key by `Accept-Encoding`.
#[derive(Clone)]
pub struct CompressionLayerForJson(CompressionLayer<LargeJson>);

impl CompressionLayerForJson {
    /// gzip, br and zstd at tower-http's default levels (gzip 6, brotli 4, zstd 3): quick enough
    /// per request, where the best levels cost many times the CPU for a few percent fewer bytes.
    pub fn new() -> Self {
        Self(CompressionLayer::new().compress_when(LargeJson))
    }
}

impl Default for CompressionLayerForJson {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for CompressionLayerForJson {
    type Service = CompressJson<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CompressJson(self.0.layer(inner))
    }
}

/// The service of [`CompressionLayerForJson`].
#[derive(Clone)]
pub struct CompressJson<S>(Compression<S, LargeJson>);

impl<S: Inner> Service<Request> for CompressJson<S> {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let response = self.0.call(request);
        Box::pin(async move {
            let Ok(mut response) = response.await;
            let not_modified = response.status() == StatusCode::NOT_MODIFIED;
            let headers = response.headers_mut();
            if (not_modified || is_json(headers)) && !varies_by_encoding(headers) {
                headers.append(header::VARY, VARY_ACCEPT_ENCODING);
            }
            Ok(response.map(Body::new))
        })
    }
}

/// Whether `Vary` already names `Accept-Encoding` (tower-http adds it to what it may encode).
fn varies_by_encoding(headers: &HeaderMap) -> bool {
    headers.get_all(header::VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|name| name.trim().eq_ignore_ascii_case("accept-encoding"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    /// The layer around a service that answers `status` with `headers` and `length` bytes of
    /// JSON-ish text, asked with `Accept-Encoding: gzip`.
    async fn answer(status: StatusCode, headers: &[(&str, &str)], length: usize) -> Response {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let inner = tower::service_fn(move |_: Request| {
            let headers = headers.clone();
            async move {
                let mut response = Response::new(Body::from("x".repeat(length)));
                *response.status_mut() = status;
                for (name, value) in headers {
                    response.headers_mut().insert(
                        header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        HeaderValue::from_str(&value).unwrap(),
                    );
                }
                Ok::<_, Infallible>(response)
            }
        });
        let request = Request::builder()
            .header(header::ACCEPT_ENCODING, "gzip")
            .body(Body::empty())
            .unwrap();
        CompressionLayerForJson::new()
            .layer(inner)
            .oneshot(request)
            .await
            .unwrap()
    }

    fn encoding(response: &Response) -> Option<&str> {
        response
            .headers()
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap())
    }

    const JSON: (&str, &str) = ("content-type", "application/json");
    const MIN: usize = MIN_COMPRESSED_BYTES as usize;

    #[tokio::test]
    async fn json_is_compressed_from_the_threshold_on() {
        let below = answer(StatusCode::OK, &[JSON], MIN - 1).await;
        let at = answer(StatusCode::OK, &[JSON], MIN).await;
        let with_charset = answer(
            StatusCode::OK,
            &[("content-type", "application/json; charset=utf-8")],
            MIN,
        )
        .await;

        assert_eq!(encoding(&below), None);
        assert_eq!(encoding(&at), Some("gzip"));
        assert_eq!(encoding(&with_charset), Some("gzip"));
        for response in [&below, &at] {
            assert!(varies_by_encoding(response.headers()));
            assert_eq!(response.headers().get_all(header::VARY).iter().count(), 1);
        }
    }

    #[tokio::test]
    async fn other_types_and_encoded_bodies_are_left_alone() {
        let html = answer(StatusCode::OK, &[("content-type", "text/html")], 4 * MIN).await;
        let encoded = answer(StatusCode::OK, &[JSON, ("content-encoding", "br")], 4 * MIN).await;

        assert_eq!(encoding(&html), None);
        assert!(!varies_by_encoding(html.headers()));
        assert_eq!(encoding(&encoded), Some("br"));
    }

    #[test]
    fn the_openapi_document_states_the_threshold() {
        use utoipa::OpenApi;
        let description = crate::http::openapi::ApiDoc::openapi().info.description;

        let threshold = format!("{} KiB or more", MIN_COMPRESSED_BYTES / 1024);
        assert!(
            description.is_some_and(|d| d.contains(&threshold)),
            "{threshold}"
        );
    }

    #[tokio::test]
    async fn a_304_is_never_encoded_and_varies_by_accept_encoding() {
        let not_modified = answer(StatusCode::NOT_MODIFIED, &[("etag", "W/\"1\"")], 0).await;

        assert_eq!(encoding(&not_modified), None);
        assert!(varies_by_encoding(not_modified.headers()));
    }
}
