//! The HTTP layer: routes, middleware and the one error type.

pub mod auth;
pub mod client_address;
pub mod compression;
pub mod cors;
pub mod error;
pub mod etl_runs;
pub mod extract;
pub mod health;
pub mod limits;
pub mod openapi;
pub mod portfolios;
pub mod prices;
pub mod request_context;
pub mod request_metrics;
pub mod rules;
pub mod symbols;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{Method, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use sqlx::PgPool;
use tower::{Service, ServiceBuilder};

use crate::auth::cache::UserCache;
use crate::auth::rate_limit::LoginLimits;
use crate::auth::token::Keys;
use crate::auth::verification::Verifier;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::migrate;
use crate::shutdown::Draining;
pub use error::AppError;

/// What every handler can reach: [`Shared`] behind one `Arc`.
///
/// A cheap clone on purpose: axum clones the state with every request's route (and once more
/// per route layer), so a clone is one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state of one application.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    /// The connection pool.
    pub db: PgPool,
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Where start-up migrations stand (readiness waits for them).
    pub migrations: migrate::Status,
    /// The keys that sign and verify access tokens.
    pub tokens: Arc<Keys>,
    /// Login attempts per email and per client, in memory.
    pub login_limits: Arc<LoginLimits>,
    /// Password verifications running and waiting.
    pub verifier: Arc<Verifier>,
    /// The request metrics, when `METRICS_PORT` is set.
    pub metrics: Option<Arc<Metrics>>,
    /// The users authenticated requests have read (crate::auth::cache).
    pub users: Arc<UserCache>,
    /// Set at the shutdown signal: readiness answers 503 from then on.
    pub draining: Draining,
}

/// The future of the application's own middleware services.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// What each of the application's middleware services wraps: the next service inward.
pub trait Inner:
    Service<Request, Response = Response, Error = Infallible, Future: Send + 'static> + Send + 'static
{
}

impl<T> Inner for T where
    T: Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
        + Send
        + 'static
{
}

/// The application as served: the router inside its middleware.
pub trait App:
    Service<Request, Response = Response, Error = Infallible, Future = ResponseFuture>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> App for T where
    T: Service<Request, Response = Response, Error = Infallible, Future = ResponseFuture>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The whole application: routes, fallbacks and middleware. Tests call it directly.
pub fn app(state: AppState) -> impl App {
    let api = Router::new()
        .route("/health", get(health::readiness))
        .route("/etl/runs", get(etl_runs::list))
        .merge(auth::router())
        .merge(symbols::router())
        .merge(prices::router())
        .merge(portfolios::router());
    let mut routes = Router::new()
        .route("/health", get(health::liveness))
        .nest("/api/v1", api)
        .merge(openapi::router());
    if state.metrics.is_some() {
        routes = routes.route_layer(request_metrics::KeepRouteLayer);
    }
    let config = Arc::clone(&state.config);
    let metrics = state.metrics.clone();
    stack(routes.with_state(state), &config, metrics)
}

/// Adds the fallbacks, and the middleware every request goes through, outermost first: request
/// id and access log, CORS, compression, then the body and time limits. Public so tests can
/// wrap routes of their own.
///
/// The middleware wraps the router, around routing, rather than each route as `Router::layer`
/// does (a layered route is cloned and boxed, layers and all, per request); and the result is
/// served as it is, not as the fallback of another router. Serve it with
/// `axum::ServiceExt::into_make_service`.
pub fn with_middleware(routes: Router, config: &Config) -> impl App {
    stack(routes, config, None)
}

/// [`with_middleware`], with the request metrics (if any), which the request context records.
fn stack(routes: Router, config: &Config, metrics: Option<Arc<Metrics>>) -> impl App {
    let limits = limits::Limits {
        body_bytes: config.request_body_limit_bytes,
        timeout: config.request_timeout,
    };
    let routes = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    ServiceBuilder::new()
        .layer(request_context::RequestContextLayer(metrics))
        .layer(cors::CorsLayerForBrowsers::new(
            &config.cors_allowed_origins,
        ))
        .layer(compression::CompressionLayerForJson::new())
        .layer(limits::LimitsLayer(limits))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .service(routes)
}

async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: Method) -> AppError {
    AppError::MethodNotAllowed(method.to_string())
}
