//! Request metrics: each request is counted in flight while it is answered, then by route
//! template, method and status, with its latency ([`crate::metrics`]).
//!
//! The route template is known only once the router has matched, inside it: [`KeepRoute`] (a
//! route layer) copies it onto the response, where [`Track`], outside the router, reads it.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use tower::{Layer, Service};

use super::{Inner, ResponseFuture};
use crate::metrics::{Metrics, UNMATCHED};

/// Adds [`Track`]; with no metrics, requests go straight through.
#[derive(Debug, Clone)]
pub struct TrackLayer(pub Option<Arc<Metrics>>);

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Track {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// Records each request in the metrics, if there are any.
#[derive(Debug, Clone)]
pub struct Track<S> {
    inner: S,
    metrics: Option<Arc<Metrics>>,
}

impl<S> Service<Request> for Track<S>
where
    S: Service<Request, Response = Response, Error = Infallible, Future = ResponseFuture>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Some(metrics) = &self.metrics else {
            return self.inner.call(request);
        };
        let in_flight = metrics.start();
        let method = request.method().clone();
        let started = Instant::now();
        let serve = self.inner.call(request);
        Box::pin(async move {
            let Ok(response) = serve.await;
            let route = response
                .extensions()
                .get::<MatchedPath>()
                .map_or(UNMATCHED, MatchedPath::as_str);
            in_flight.record(route, &method, response.status(), started.elapsed());
            Ok(response)
        })
    }
}

/// A route layer: puts the matched route template on the response for [`Track`].
#[derive(Debug, Clone, Copy)]
pub struct KeepRouteLayer;

impl<S> Layer<S> for KeepRouteLayer {
    type Service = KeepRoute<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KeepRoute { inner }
    }
}

/// See [`KeepRouteLayer`].
#[derive(Debug, Clone)]
pub struct KeepRoute<S> {
    inner: S,
}

impl<S: Inner> Service<Request> for KeepRoute<S> {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request.extensions().get::<MatchedPath>().cloned();
        let serve = self.inner.call(request);
        Box::pin(async move {
            let Ok(mut response) = serve.await;
            if let Some(route) = route {
                response.extensions_mut().insert(route);
            }
            Ok(response)
        })
    }
}
