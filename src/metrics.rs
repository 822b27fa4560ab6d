//! Prometheus metrics, served on a listener of their own (`METRICS_PORT`) so that they are never
//! public by accident.
//!
//! Requests are counted as they are answered ([`Metrics::record`]); everything else is read when
//! scraped: the pool, the login limits, the password-hash queue, and the ETL's last run from
//! `etl_run`. A database that cannot answer within [`ETL_QUERY_TIMEOUT`] leaves the ETL metrics
//! out (and `sigmasight_etl_last_run_query_ok` at 0), never the whole scrape.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use sqlx::PgPool;

use crate::auth::cache::UserCache;
use crate::auth::rate_limit::LoginLimits;
use crate::auth::verification::Verifier;
use crate::db::etl_runs::{self, LatestRun};

/// The longest a scrape waits for the ETL's last run.
pub const ETL_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// The route label of a request no route matched: never the raw path, which a client chooses.
pub const UNMATCHED: &str = "unmatched";

/// Request latency buckets, in seconds: 1 ms to about 16 s.
const LATENCY_BUCKETS: [f64; 15] = [
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 16.0, 30.0,
];

/// `etl_run.status`'s values (the table's CHECK constraint), one series each.
const ETL_STATUSES: [&str; 6] = [
    "running",
    "succeeded",
    "partial",
    "failed",
    "cancelled",
    "abandoned",
];

/// A route label: the template the router matched, or [`UNMATCHED`].
///
/// It holds axum's [`MatchedPath`] (a shared string) rather than a copy, so that counting a
/// request allocates nothing; equal and hashed by its text.
#[derive(Debug, Clone)]
pub enum Route {
    /// A route's template, such as `/api/v1/prices/{symbol}`.
    Matched(MatchedPath),
    /// No route matched.
    Unmatched,
}

impl Route {
    /// The label's text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Matched(path) => path.as_str(),
            Self::Unmatched => UNMATCHED,
        }
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: Route,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Route,
    method: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The request metrics, kept from start-up.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: HistogramFamily,
    in_flight: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics, with the build info registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sigmasight");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let durations: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by route template and method",
            durations.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being answered",
            in_flight.clone(),
        );
        registry.register(
            "build",
            "The running build",
            Info::new(vec![
                ("version", crate::version::VERSION),
                ("commit", crate::version::GIT_COMMIT),
            ]),
        );
        Self {
            registry,
            requests,
            durations,
            in_flight,
        }
    }

    /// Counts a request as started; it stays in flight until the guard is dropped, and
    /// [`InFlight::finish`] counts it as answered.
    pub fn start(self: &Arc<Self>, method: &Method) -> InFlight {
        self.in_flight.inc();
        InFlight {
            metrics: Arc::clone(self),
            method: method_label(method),
        }
    }

    /// Counts an answered request under its route (see [`Route`]).
    fn record(&self, route: Route, method: &'static str, status: StatusCode, elapsed: Duration) {
        let labels = RouteLabels { route, method };
        self.durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                route: labels.route,
                method,
                status: status.as_u16(),
            })
            .inc();
    }
}

/// A request in flight: dropping it (answered or cancelled) takes it out of the gauge.
#[derive(Debug)]
pub struct InFlight {
    metrics: Arc<Metrics>,
    method: &'static str,
}

impl InFlight {
    /// Counts the request as answered, with its status and how long it took.
    pub fn finish(self, route: Route, status: StatusCode, elapsed: Duration) {
        self.metrics.record(route, self.method, status, elapsed);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

/// A bounded label for a method: the standard ones by name, anything else as "other".
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
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
