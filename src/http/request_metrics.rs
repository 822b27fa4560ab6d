//! The route template for the request metrics ([`crate::metrics`]), which are recorded outside
//! the router (in [`super::request_context`]) where the template is not known: it is known only
//! once the router has matched, inside it, so [`KeepRoute`] (a route layer) copies it onto the
//! response.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use tower::{Layer, Service};

use super::{Inner, ResponseFuture};

/// A route layer: puts the matched route template on the response for the request context.
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
