//! Portfolios and their positions, owned by the calling user: CRUD at `/api/v1/portfolios`,
//! positions at `/api/v1/portfolios/{id}/positions`, and the valuation at
//! `/api/v1/portfolios/{id}/summary`.
//!
//! Another user's portfolio is a 404, exactly like one that does not exist, so ids cannot be
//! probed. Quantities and money are exact decimals sent as JSON strings (docs/api.md); the
//! summary's arithmetic is done by Postgres on `numeric`, which neither rounds nor overflows.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::auth::AuthUser;
use super::error::ErrorBody;
use super::extract::{Json, Path};
use super::rules;
use super::{AppError, AppState};
use crate::db::portfolios::{self, Portfolio, PositionRow, PositionValues};
use crate::domain::{PortfolioName, Price, Quantity, Symbol};

/// The routes under `/portfolios`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/portfolios", get(list).post(create))
        .route("/portfolios/{id}", get(show).patch(rename).delete(remove))
        .route(
            "/portfolios/{id}/positions",
            get(list_positions).post(add_position),
        )
        .route(
            "/portfolios/{id}/positions/{position_id}",
            get(show_position)
                .put(replace_position)
                .delete(remove_position),
        )
        .route("/portfolios/{id}/summary", get(summary))
}

/// `GET /portfolios`'s body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Portfolios {
    /// The caller's portfolios, by name.
    pub portfolios: Vec<Portfolio>,
}

/// The body of `POST /portfolios` and `PATCH /portfolios/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortfolioInput {
    /// 1-100 characters, none of them a control character, once surrounding white space is
    /// dropped.
    #[schema(schema_with = name_schema)]
    pub name: PortfolioName,
}

fn name_schema() -> utoipa::openapi::schema::Object {
    PortfolioName::RULE.schema(&format!(
        "1-{} characters, none of them a control character, once surrounding white space is \
         dropped.",
        PortfolioName::RULE.max
    ))
}

/// A position as sent: decimals as exact strings, without trailing zeros.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Position {
    /// Its id.
    pub id: Uuid,
    /// The ticker.
    pub symbol: String,
    /// Shares held (negative for a short position).
    pub quantity: String,
    /// Cost per share.
    pub cost_basis: String,
    /// The day it was opened.
    pub opened_at: NaiveDate,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

impl From<PositionRow> for Position {
    fn from(row: PositionRow) -> Self {
        Self {
            id: row.id,
            symbol: row.symbol,
            quantity: row.quantity.normalize().to_string(),
            cost_basis: row.cost_basis.normalize().to_string(),
            opened_at: row.opened_at,
            created_at: row.created_at,
        }
    }
}

/// `GET /portfolios/{id}/positions`'s body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Positions {
    /// The portfolio's positions, by symbol then opening date.
    pub positions: Vec<Position>,
}

// All fields but the date are checked as the body is read (their types' `Deserialize`); the
// decimals are read from a JSON string (`"10.5"`) or number (`10.5`).
/// The body of `POST` and `PUT` on positions. The fields' rules are in their schemas.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionInput {
    /// The ticker.
    #[schema(schema_with = symbol_schema)]
    pub symbol: Symbol,
    /// Shares held.
    #[schema(schema_with = quantity_schema)]
    pub quantity: Quantity,
    /// Cost per share.
    #[schema(schema_with = cost_basis_schema)]
    pub cost_basis: Price,
    /// The day the position was opened.
    #[schema(schema_with = opened_at_schema)]
    pub opened_at: String,
}

fn symbol_schema() -> utoipa::openapi::schema::Object {
    Symbol::schema("The ticker (`daily_prices`'s spelling rule).")
}

fn quantity_schema() -> utoipa::openapi::schema::Object {
    let rule = Quantity::RULE;
    rule.schema(
        &format!(
            "Shares: non-zero (negative for a short position), at most {} digits before the \
             point and {} after it.",
            rule.digits, rule.places
        ),
        "10.5",
    )
}

fn cost_basis_schema() -> utoipa::openapi::schema::Object {
    let rule = Price::RULE;
    rule.schema(
        &format!(
            "Cost per share: at least 0, at most {} digits before the point and {} after it.",
            rule.digits, rule.places
        ),
        "187.25",
    )
}

/// The document is generated when the server starts, so its last day is that day's tomorrow:
/// never later than what `validate` takes.
fn opened_at_schema() -> utoipa::openapi::schema::Object {
    rules::date_schema(
        last_opening_day(),
        "`YYYY-MM-DD`, from 1900-01-01 to tomorrow (UTC).",
    )
}

/// The latest `opened_at` taken: tomorrow in UTC, so that a position opened today anywhere is
/// taken.
fn last_opening_day() -> NaiveDate {
    Utc::now().date_naive().succ_opt().unwrap_or(NaiveDate::MAX)
}

/// A validated [`PositionInput`].
struct ValidPosition {
    symbol: Symbol,
    quantity: Quantity,
    cost_basis: Price,
    opened_at: NaiveDate,
}

impl ValidPosition {
    fn values(&self) -> PositionValues<'_> {
        PositionValues {
            symbol: &self.symbol,
            quantity: self.quantity.value(),
            cost_basis: self.cost_basis.value(),
            opened_at: self.opened_at,
        }
    }
}

impl PositionInput {
    fn validate(self) -> Result<ValidPosition, AppError> {
        let last = last_opening_day();
        let opened_at = rules::parse_date(&self.opened_at)
            .filter(|d| (rules::earliest_date()..=last).contains(d))
            .ok_or_else(|| {
                AppError::Validation(format!(
                    "opened_at: expected a date YYYY-MM-DD from 1900-01-01 to {last}, got {:?}",
                    self.opened_at
                ))
            })?;
        Ok(ValidPosition {
            symbol: self.symbol,
            quantity: self.quantity,
            cost_basis: self.cost_basis,
            opened_at,
        })
    }
}

fn not_found() -> AppError {
    AppError::NotFound("no such portfolio".to_owned())
}

fn duplicate_name(error: sqlx::Error, name: &str) -> AppError {
    AppError::conflict_on(error, portfolios::NAME_KEY, || {
        format!("you already have a portfolio named {name:?}")
    })
}

/// The caller's portfolio `id`, or a 404 whether it is missing or someone else's.
async fn owned(db: &PgPool, user: &AuthUser, id: Uuid) -> Result<Portfolio, AppError> {
    portfolios::owned(db, user.id, id)
        .await?
        .ok_or_else(not_found)
}

/// Lists the caller's portfolios.
#[utoipa::path(get, path = "/api/v1/portfolios", operation_id = "list_portfolios",
    tag = "portfolios", security(("bearer" = [])),
    responses((status = 200, body = Portfolios), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Portfolios>, AppError> {
    let portfolios = portfolios::list(&state.db, user.id).await?;
    Ok(Json(Portfolios { portfolios }))
}

/// Creates a portfolio: 201, or 409 if the caller has one of that name.
#[utoipa::path(post, path = "/api/v1/portfolios", operation_id = "create_portfolio",
    tag = "portfolios", security(("bearer" = [])), request_body = PortfolioInput,
    responses(
        (status = 201, body = Portfolio, links(
            ("show" = (operation_id = "show_portfolio", parameters(("id" = "$response.body#/id")))),
            ("rename" = (operation_id = "rename_portfolio", parameters(("id" = "$response.body#/id")))),
            ("delete" = (operation_id = "delete_portfolio", parameters(("id" = "$response.body#/id")))),
            ("positions" = (operation_id = "list_positions", parameters(("id" = "$response.body#/id")))),
            ("add_position" = (operation_id = "add_position", parameters(("id" = "$response.body#/id")))),
            ("summary" = (operation_id = "portfolio_summary", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(input): Json<PortfolioInput>,
) -> Result<(StatusCode, Json<Portfolio>), AppError> {
    let name = input.name;
    let portfolio = portfolios::create(&state.db, user.id, &name)
        .await
        .map_err(|e| duplicate_name(e, &name))?;
    Ok((StatusCode::CREATED, Json(portfolio)))
}

/// One of the caller's portfolios.
#[utoipa::path(get, path = "/api/v1/portfolios/{id}", operation_id = "show_portfolio",
    tag = "portfolios", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Portfolio id")),
    responses((status = 200, body = Portfolio), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<Portfolio>, AppError> {
    Ok(Json(owned(&state.db, &user, id).await?))
}

/// Renames one of the caller's portfolios.
#[utoipa::path(patch, path = "/api/v1/portfolios/{id}", operation_id = "rename_portfolio",
    tag = "portfolios", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Portfolio id")), request_body = PortfolioInput,
    responses((status = 200, body = Portfolio), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rename(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(input): Json<PortfolioInput>,
) -> Result<Json<Portfolio>, AppError> {
    let name = input.name;
    portfolios::rename(&state.db, user.id, id, &name)
        .await
        .map_err(|e| duplicate_name(e, &name))?
        .map(Json)
        .ok_or_else(not_found)
}

/// Deletes one of the caller's portfolios and its positions: 204.
#[utoipa::path(delete, path = "/api/v1/portfolios/{id}", operation_id = "delete_portfolio",
    tag = "portfolios", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Portfolio id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, AppError> {
    if !portfolios::delete(&state.db, user.id, id).await? {
        return Err(not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The positions of one of the caller's portfolios.
#[utoipa::path(get, path = "/api/v1/portfolios/{id}/positions", operation_id = "list_positions",
    tag = "portfolios", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Portfolio id")),
    responses((status = 200, body = Positions), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_positions(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<Positions>, AppError> {
    owned(&state.db, &user, id).await?;
    let rows = portfolios::positions(&state.db, id).await?;
    Ok(Json(Positions {
        positions: rows.into_iter().map(Position::from).collect(),
    }))
}

/// Adds a position to one of the caller's portfolios: 201.
#[utoipa::path(post, path = "/api/v1/portfolios/{id}/positions", operation_id = "add_position",
    tag = "portfolios", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Portfolio id")), request_body = PositionInput,
    responses(
        (status = 201, body = Position, links(
            ("show" = (operation_id = "show_position",
                parameters(("id" = "$request.path.id"), ("position_id" = "$response.body#/id")))),
            ("replace" = (operation_id = "replace_position",
                parameters(("id" = "$request.path.id"), ("position_id" = "$response.body#/id")))),
            ("delete" = (operation_id = "remove_position",
                parameters(("id" = "$request.path.id"), ("position_id" = "$response.body#/id")))),
            ("summary" = (operation_id = "portfolio_summary", parameters(("id" = "$request.path.id")))),
        )),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_position(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
    Json(input): Json<PositionInput>,
) -> Result<(StatusCode, Json<Position>), AppError> {
    let position = input.validate()?;
    owned(&state.db, &user, id).await?;
    let row = portfolios::add_position(&state.db, id, position.values()).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

fn no_position() -> AppError {
    AppError::NotFound("no such position".to_owned())
}

/// One position of one of the caller's portfolios.
#[utoipa::path(get, path = "/api/v1/portfolios/{id}/positions/{position_id}",
    operation_id = "show_position", tag = "portfolios", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Portfolio id"), ("position_id" = Uuid, Path, description = "Position id")),
    responses((status = 200, body = Position), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn show_position(
    State(state): State<AppState>,
    user: AuthUser,
    Path((id, position_id)): Path<(Uuid, Uuid)>,
) -> Result<Json<Position>, AppError> {
    owned(&state.db, &user, id).await?;
    portfolios::position(&state.db, id, position_id)
        .await?
        .map(|row| Json(row.into()))
        .ok_or_else(no_position)
}

/// Replaces every field of one position.
#[utoipa::path(put, path = "/api/v1/portfolios/{id}/positions/{position_id}",
    operation_id = "replace_position", tag = "portfolios", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Portfolio id"), ("position_id" = Uuid, Path, description = "Position id")),
    request_body = PositionInput,
    responses((status = 200, body = Position), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace_position(
    State(state): State<AppState>,
    user: AuthUser,
    Path((id, position_id)): Path<(Uuid, Uuid)>,
    Json(input): Json<PositionInput>,
) -> Result<Json<Position>, AppError> {
    let position = input.validate()?;
    owned(&state.db, &user, id).await?;
    portfolios::replace_position(&state.db, id, position_id, position.values())
        .await?
        .map(|row| Json(row.into()))
        .ok_or_else(no_position)
}

/// Deletes one position: 204.
#[utoipa::path(delete, path = "/api/v1/portfolios/{id}/positions/{position_id}",
    operation_id = "remove_position", tag = "portfolios", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Portfolio id"), ("position_id" = Uuid, Path, description = "Position id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn remove_position(
    State(state): State<AppState>,
    user: AuthUser,
    Path((id, position_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, AppError> {
    owned(&state.db, &user, id).await?;
    if !portfolios::delete_position(&state.db, id, position_id).await? {
        return Err(no_position());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// One priced position of a summary.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ValuedPosition {
    /// The position's id.
    pub id: Uuid,
    /// The ticker.
    pub symbol: String,
    /// Shares held.
    pub quantity: String,
    /// Cost per share.
    pub cost_basis: String,
    /// The latest close used.
    pub price: String,
    /// The trading day of that close.
    pub price_date: NaiveDate,
    /// quantity × price.
    pub market_value: String,
    /// quantity × cost basis.
    pub cost: String,
    /// market value − cost.
    pub unrealized_pnl: String,
}

/// A position without any price in `daily_prices`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnpricedPosition {
    /// The position's id.
    pub id: Uuid,
    /// The ticker with no bar.
    pub symbol: String,
    /// Shares held.
    pub quantity: String,
}

/// `GET /portfolios/{id}/summary`'s body. Totals cover the priced positions only.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// The portfolio's id.
    pub portfolio_id: Uuid,
    /// The most recent trading day among the closes used; `null` if nothing is priced.
    pub as_of: Option<NaiveDate>,
    /// Sum of the market values.
    pub total_market_value: String,
    /// Sum of the costs.
    pub total_cost: String,
    /// Total market value − total cost.
    pub total_unrealized_pnl: String,
    /// The priced positions.
    pub positions: Vec<ValuedPosition>,
    /// Positions whose symbol has no price yet.
    pub unpriced: Vec<UnpricedPosition>,
}

/// Values one of the caller's portfolios at the latest close of each symbol.
#[utoipa::path(get, path = "/api/v1/portfolios/{id}/summary", operation_id = "portfolio_summary",
    tag = "portfolios", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Portfolio id")),
    responses((status = 200, body = Summary), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn summary(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<Summary>, AppError> {
    owned(&state.db, &user, id).await?;
    let rows = portfolios::summary(&state.db, id).await?;
    let zero = || "0".to_owned();
    let first = rows.first();
    let as_of = first.and_then(|r| r.as_of);
    let total_market_value = first
        .and_then(|r| r.total_market_value.clone())
        .unwrap_or_else(zero);
    let total_cost = first
        .and_then(|r| r.total_cost.clone())
        .unwrap_or_else(zero);
    let total_unrealized_pnl = first
        .and_then(|r| r.total_unrealized_pnl.clone())
        .unwrap_or_else(zero);

    let mut positions = Vec::new();
    let mut unpriced = Vec::new();
    for row in rows {
        match (
            row.price,
            row.price_date,
            row.market_value,
            row.cost,
            row.unrealized_pnl,
        ) {
            (Some(price), Some(price_date), Some(market_value), Some(cost), Some(pnl)) => positions
                .push(ValuedPosition {
                    id: row.id,
                    symbol: row.symbol,
                    quantity: row.quantity,
                    cost_basis: row.cost_basis,
                    price,
                    price_date,
                    market_value,
                    cost,
                    unrealized_pnl: pnl,
                }),
            _ => unpriced.push(UnpricedPosition {
                id: row.id,
                symbol: row.symbol,
                quantity: row.quantity,
            }),
        }
    }
    Ok(Json(Summary {
        portfolio_id: id,
        as_of,
        total_market_value,
        total_cost,
        total_unrealized_pnl,
        positions,
        unpriced,
    }))
}
