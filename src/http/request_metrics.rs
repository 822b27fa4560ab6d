//! The route template for the request metrics ([`crate::metrics`]), which are recorded outside
//! the router (in [`super::request_context`]) where the template is not known: it is known only
//! once the router has matched, inside it. So the request context runs each request in a
//! [`scope`] with an empty slot, and [`KeepRoute`] (a route layer) fills it; the request context
//! [`take`]s it when the answer is ready.
//!
//! A task-local slot rather than a response extension: the extension cost an allocation (a
//! response's extension map) and a boxed future per request.

use std::cell::Cell;
use std::future::Future;
use std::task::{Context, Poll};

use axum::extract::{MatchedPath, Request};
use tower::{Layer, Service};

use crate::metrics::Route;

tokio::task_local! {
    static ROUTE: Cell<Option<MatchedPath>>;
}

/// Runs `future` (a request's) with an empty route slot.
pub fn scope<F: Future>(future: F) -> impl Future<Output = F::Output> {
    ROUTE.scope(Cell::new(None), future)
}

/// The route the router matched for the request of this task's [`scope`]:
/// [`Route::Unmatched`] if none did (or outside a scope).
pub fn take() -> Route {
    ROUTE
        .try_with(Cell::take)
        .ok()
        .flatten()
        .map_or(Route::Unmatched, Route::Matched)
}

/// A route layer: puts the matched route template in the request's slot.
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

impl<S: Service<Request>> Service<Request> for KeepRoute<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    /// Called as the route's future is first polled, inside the request's task and scope (axum
    /// calls a route's service from its future).
    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(route) = request.extensions().get::<MatchedPath>() {
            // Outside a scope (no request context around the router) there is nowhere to keep it.
            let _ = ROUTE.try_with(|slot| slot.set(Some(route.clone())));
        }
        self.inner.call(request)
    }
}
