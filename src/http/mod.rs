//! The HTTP layer: routes, middleware and the one error type.

pub mod auth;
pub mod error;
pub mod etl_runs;
pub mod extract;
pub mod health;
pub mod limits;
pub mod openapi;
pub mod portfolios;
pub mod prices;
pub mod request_context;
pub mod symbols;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method, Uri};
use axum::routing::get;
use axum::{middleware, Router};
use sqlx::PgPool;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::rate_limit::LoginLimits;
use crate::auth::token::Keys;
use crate::config::Config;
use crate::migrate;
pub use error::AppError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
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
}

/// The whole application: routes, fallbacks and middleware. Tests call it directly.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(health::readiness))
        .route("/etl/runs", get(etl_runs::list))
        .merge(auth::router())
        .merge(symbols::router())
        .merge(prices::router())
        .merge(portfolios::router());
    let routes = Router::new()
        .route("/health", get(health::liveness))
        .nest("/api/v1", api)
        .merge(openapi::router());
    with_middleware(routes, &state.config).with_state(state)
}

/// Adds the fallbacks and middleware every route gets, outermost first: request id and access
/// log, CORS, then the body and time limits. Public so tests can wrap routes of their own.
pub fn with_middleware<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    config: &Config,
) -> Router<S> {
    let limits = limits::Limits {
        body_bytes: config.request_body_limit_bytes,
        timeout: config.request_timeout,
    };
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(middleware::from_fn_with_state(limits, limits::enforce))
        .layer(cors(&config.cors_allowed_origins))
        .layer(middleware::from_fn(request_context::track))
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            request_context::X_REQUEST_ID.clone(),
        ])
        .expose_headers([request_context::X_REQUEST_ID.clone()])
        .max_age(std::time::Duration::from_secs(600))
}

async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: Method) -> AppError {
    AppError::MethodNotAllowed(method.to_string())
}
