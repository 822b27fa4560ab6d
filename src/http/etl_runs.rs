//! `GET /api/v1/etl/runs?limit=`: the most recent ETL runs, newest first, as recorded in
//! `etl_run`. Any authenticated user may read it.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::AuthUser;
use super::error::ErrorBody;
use super::{AppError, AppState};
use crate::db::etl_runs::{self, RunRow};

const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

/// The query string. `limit` is read as text so that a bad value gets our error, not axum's.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Params {
    /// 1-100, default 20.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// The response body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Runs {
    /// The runs, newest first.
    pub runs: Vec<RunRow>,
}

/// Lists the `limit` (1-100, default 20) most recent runs.
#[utoipa::path(get, path = "/api/v1/etl/runs", operation_id = "list_etl_runs", tag = "etl", params(Params),
    security(("bearer" = [])),
    responses((status = 200, body = Runs), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _user: AuthUser,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Runs>, AppError> {
    let Query(params) = params.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(AppError::Validation(format!(
                    "limit: expected an integer from 1 to {MAX_LIMIT}, got {text:?}"
                )))
            }
        },
    };
    let runs = etl_runs::recent(&state.db, limit).await?;
    Ok(Json(Runs { runs }))
}
