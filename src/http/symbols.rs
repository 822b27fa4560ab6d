//! `GET /api/v1/symbols` (any user) and `POST /api/v1/symbols` (admins): the tracked universe
//! the ETL loads (`symbols` table).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::{AdminUser, AuthUser};
use super::error::ErrorBody;
use super::extract::Json;
use super::{AppError, AppState};
use crate::config::is_symbol;

/// The longest display name accepted.
const MAX_NAME_CHARS: usize = 200;

/// One tracked symbol.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Symbol {
    /// The ticker, e.g. `BRK.B`.
    pub symbol: String,
    /// A display name, if one was given.
    pub name: Option<String>,
    /// Whether the ETL fetches it.
    pub active: bool,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// `GET /symbols`'s body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Symbols {
    /// Every tracked symbol, in alphabetical order.
    pub symbols: Vec<Symbol>,
}

/// `POST /symbols`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSymbol {
    /// Upper-case ticker: letters, digits and `. - ^`, at most 20 characters.
    #[schema(pattern = r"^[A-Z0-9^][A-Z0-9.^-]{0,19}$", example = "BRK.B")]
    pub symbol: String,
    /// An optional display name (at most 200 characters).
    #[schema(max_length = 200)]
    pub name: Option<String>,
}

/// The routes under `/symbols`.
pub fn router() -> Router<AppState> {
    Router::new().route("/symbols", get(list).post(create))
}

/// Lists the tracked symbols.
#[utoipa::path(get, path = "/api/v1/symbols", tag = "symbols", security(("bearer" = [])),
    responses((status = 200, body = Symbols), (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _user: AuthUser,
) -> Result<Json<Symbols>, AppError> {
    let symbols = sqlx::query_as::<_, Symbol>(
        "SELECT symbol, name, active, created_at FROM symbols ORDER BY symbol",
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Symbols { symbols }))
}

/// Adds a symbol to the tracked universe: 201, or 409 if it is already there.
#[utoipa::path(post, path = "/api/v1/symbols", tag = "symbols", security(("bearer" = [])),
    request_body = NewSymbol,
    responses((status = 201, body = Symbol), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminUser,
    Json(new): Json<NewSymbol>,
) -> Result<(StatusCode, Json<Symbol>), AppError> {
    if !is_symbol(&new.symbol) {
        return Err(AppError::Validation(format!(
            "symbol: expected an upper-case ticker such as AAPL or BRK.B (letters, digits, . - ^; \
             at most 20), got {:?}",
            new.symbol
        )));
    }
    let name = new
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control))
    {
        return Err(AppError::Validation(format!(
            "name: expected at most {MAX_NAME_CHARS} printable characters"
        )));
    }
    let symbol = sqlx::query_as::<_, Symbol>(
        "INSERT INTO symbols (symbol, name) VALUES ($1, $2)
         RETURNING symbol, name, active, created_at",
    )
    .bind(&new.symbol)
    .bind(name)
    .fetch_one(&state.db)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("symbols_pkey") => {
            AppError::Conflict(format!("{} is already tracked", new.symbol))
        }
        _ => e.into(),
    })?;
    Ok((StatusCode::CREATED, Json(symbol)))
}
