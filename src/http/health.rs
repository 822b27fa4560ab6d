//! Liveness (`/health`) and readiness (`/api/v1/health`).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::extract::json_body;
use super::AppState;
use crate::migrate;
use crate::version::{GIT_COMMIT, VERSION};

/// Readiness gives the database this long, well under the pool's acquire timeout: a probe that
/// hangs for 30 s is worse than one that says "not ready" now.
pub const READINESS_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health`: the process is up. Never touches the database, so a restart loop is never
/// triggered by a database outage.
pub async fn liveness() -> Response {
    json_body(r#"{"status":"ok"}"#)
}

/// The readiness body, the same shape for 200 and 503.
#[derive(Debug, Serialize)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// `ok` or `unreachable`.
    pub database: &'static str,
    /// `applied`, `pending` or `skipped`.
    pub migrations: &'static str,
    /// The crate version.
    pub version: &'static str,
    /// The git commit of the build.
    pub commit: &'static str,
}

/// `GET /api/v1/health`: ready to serve traffic. 200 when the database answers `SELECT 1`
/// within [`READINESS_DB_TIMEOUT`] and start-up migrations are done; 503 otherwise, and from the
/// shutdown signal on, so that a load balancer stops sending before the server stops accepting.
/// It recovers by itself when the database returns: the pool replaces dead connections.
pub async fn readiness(State(state): State<AppState>) -> Response {
    // As of the request's arrival: one already running at the signal still says how it stood.
    let draining = state.draining.is_draining();
    let probe = crate::db::health::ping(&state.db);
    let database_ok = match tokio::time::timeout(READINESS_DB_TIMEOUT, probe).await {
        Ok(Ok(_)) => true,
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "readiness: the database is unreachable");
            false
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = READINESS_DB_TIMEOUT.as_millis() as u64,
                "readiness: the database did not answer in time"
            );
            false
        }
    };
    let migrations = state.migrations.get();
    let ready = database_ok && migrations != migrate::State::Pending && !draining;
    let body = Readiness {
        status: if ready { "ok" } else { "unavailable" },
        database: if database_ok { "ok" } else { "unreachable" },
        migrations: migrations.as_str(),
        version: VERSION,
        commit: GIT_COMMIT,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
