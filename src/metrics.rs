//! Prometheus metrics, served on a listener of their own (`METRICS_PORT`) so that they are never
//! public by accident.
//!
//! Requests are counted as they are answered ([`requests`]); everything else is read when
//! scraped: the pool, the login limits, the password-hash queue, and the ETL's last run from
//! `etl_run`. A database that cannot answer within [`ETL_QUERY_TIMEOUT`] leaves the ETL metrics
//! out (and `sigmasight_etl_last_run_query_ok` at 0), never the whole scrape.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use sqlx::PgPool;

use crate::auth::cache::UserCache;
use crate::auth::rate_limit::LoginLimits;
use crate::auth::verification::Verifier;
use crate::db::etl_runs::{self, LatestRun};

mod requests;

pub use requests::{InFlight, RequestMetrics, Route, UNMATCHED};

/// The longest a scrape waits for the ETL's last run.
pub const ETL_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// `etl_run.status`'s values (the table's CHECK constraint), one series each.
const ETL_STATUSES: [&str; 6] = [
    "running",
    "succeeded",
    "partial",
    "failed",
    "cancelled",
    "abandoned",
];

/// The request metrics, kept from start-up, and the build info.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Arc<RequestMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// No request counted yet, and the build info.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sigmasight");
        let requests = Arc::new(RequestMetrics::default());
        registry.register_collector(Box::new(Arc::clone(&requests)));
        registry.register(
            "build",
            "The running build",
            Info::new(vec![
                ("version", crate::version::VERSION),
                ("commit", crate::version::GIT_COMMIT),
            ]),
        );
        Self { registry, requests }
    }

    /// Counts a request as started (see [`RequestMetrics::start`]).
    pub fn start(&self, method: &Method) -> InFlight {
        self.requests.start(method)
    }
}

/// What the metrics listener reads from.
#[derive(Clone)]
pub struct MetricsState {
    /// The request metrics.
    pub metrics: Arc<Metrics>,
    /// The API's pool.
    pub db: PgPool,
    /// Its most connections (`DATABASE_POOL_SIZE`).
    pub pool_max: u32,
    /// The login limits.
    pub login_limits: Arc<LoginLimits>,
    /// The password-hash queue.
    pub verifier: Arc<Verifier>,
    /// The cache of users.
    pub users: Arc<UserCache>,
}

/// The metrics listener's routes: `GET /metrics`, nothing else.
pub fn router(state: MetricsState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}

async fn scrape(State(state): State<MetricsState>) -> Response {
    let etl = tokio::time::timeout(ETL_QUERY_TIMEOUT, etl_runs::latest_summary(&state.db)).await;
    let etl = match etl {
        Ok(Ok(run)) => Some(run),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "metrics: cannot read the ETL's last run");
            None
        }
        Err(_) => {
            tracing::warn!("metrics: reading the ETL's last run timed out");
            None
        }
    };
    match encode(&state, etl) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(error = %error, "metrics: encoding failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The whole exposition: the request metrics, then what is read at scrape time. `etl` is
/// `None` when the database did not answer.
fn encode(state: &MetricsState, etl: Option<Option<LatestRun>>) -> Result<String, std::fmt::Error> {
    let mut now = Registry::with_prefix("sigmasight");
    now.register(
        "db_pool_connections",
        "Connections the pool holds, in use or idle",
        ConstGauge::new(i64::from(state.db.size())),
    );
    now.register(
        "db_pool_idle_connections",
        "Idle connections in the pool",
        ConstGauge::new(i64::try_from(state.db.num_idle()).unwrap_or(i64::MAX)),
    );
    now.register(
        "db_pool_max_connections",
        "Most connections the pool opens (DATABASE_POOL_SIZE)",
        ConstGauge::new(i64::from(state.pool_max)),
    );
    now.register(
        "user_cache_listening",
        "1 while the user cache's change listener is connected (the cache answers only then)",
        ConstGauge::new(i64::from(state.users.is_live())),
    );
    now.register(
        "user_cache_users",
        "Users the cache holds",
        ConstGauge::new(count(state.users.len())),
    );
    now.register(
        "login_refusals",
        "Login attempts refused by the login limits",
        ConstCounter::new(state.login_limits.refused()),
    );
    now.register(
        "password_hash_running",
        "Password verifications running",
        ConstGauge::new(count(state.verifier.running())),
    );
    now.register(
        "password_hash_waiting",
        "Password verifications waiting for a turn",
        ConstGauge::new(count(state.verifier.waiting())),
    );
    now.register(
        "password_hash_capacity",
        "Most password verifications running and waiting at once",
        ConstGauge::new(count(state.verifier.capacity())),
    );
    now.register(
        "password_hash_turned_away",
        "Logins turned away (503) because the password-hash queue was full",
        ConstCounter::new(state.verifier.turned_away()),
    );
    now.register(
        "etl_last_run_query_ok",
        "1 if the ETL's last run could be read from the database in this scrape",
        ConstGauge::new(i64::from(etl.is_some())),
    );
    if let Some(Some(run)) = etl {
        let status = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        for value in ETL_STATUSES {
            status
                .get_or_create(&vec![("status", value)])
                .set(i64::from(run.status == value));
        }
        now.register(
            "etl_last_run_status",
            "The ETL's last run: 1 for its status, 0 for the others",
            status,
        );
        now.register(
            "etl_last_run_started_timestamp_seconds",
            "When the ETL's last run started, in seconds since the Unix epoch",
            ConstGauge::new(run.started_at),
        );
        if let Some(duration) = run.duration_seconds {
            now.register(
                "etl_last_run_duration_seconds",
                "How long the ETL's last run took (absent while it runs)",
                ConstGauge::new(duration),
            );
        }
        let bars = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        for (outcome, rows) in [
            ("inserted", run.rows_inserted),
            ("updated", run.rows_updated),
            ("unchanged", run.rows_unchanged),
            ("rejected", run.rows_rejected),
        ] {
            bars.get_or_create(&vec![("outcome", outcome)]).set(rows);
        }
        now.register(
            "etl_last_run_bars",
            "Daily bars of the ETL's last run, by outcome",
            bars,
        );
    }

    let mut body = String::new();
    encode_registry(&mut body, &state.metrics.registry)?;
    encode_registry(&mut body, &now)?;
    encode_eof(&mut body)?;
    Ok(body)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
