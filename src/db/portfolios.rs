//! `portfolios` and their `positions`. Every portfolio statement names its owner, so another
//! user's portfolio reads as missing; position statements take a portfolio already checked to
//! be the caller's.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgExecutor;
use uuid::Uuid;

/// A portfolio.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Portfolio {
    /// Its id.
    pub id: Uuid,
    /// Its name, unique among the user's portfolios.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// The unique constraint a second portfolio of the same name and user violates.
pub const NAME_KEY: &str = "portfolios_user_name_key";

/// The portfolio `id` if `user_id` owns it.
pub async fn owned(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Portfolio>, sqlx::Error> {
    sqlx::query_as!(
        Portfolio,
        "SELECT id, name, created_at FROM portfolios WHERE id = $1 AND user_id = $2",
        id,
        user_id,
    )
    .fetch_optional(db)
    .await
}

/// The portfolios of `user_id`, by name.
pub async fn list(db: impl PgExecutor<'_>, user_id: Uuid) -> Result<Vec<Portfolio>, sqlx::Error> {
    sqlx::query_as!(
        Portfolio,
        "SELECT id, name, created_at FROM portfolios WHERE user_id = $1 ORDER BY name",
        user_id,
    )
    .fetch_all(db)
    .await
}

/// Creates a portfolio; a unique violation of [`NAME_KEY`] if the user has one of that name.
pub async fn create(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    name: &str,
) -> Result<Portfolio, sqlx::Error> {
    sqlx::query_as!(
        Portfolio,
        "INSERT INTO portfolios (user_id, name) VALUES ($1, $2) RETURNING id, name, created_at",
        user_id,
        name,
    )
    .fetch_one(db)
    .await
}

/// Creates a portfolio unless the user has one of that name; the new one's id (the demo seed).
pub async fn create_if_missing(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    name: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "INSERT INTO portfolios (user_id, name) VALUES ($1, $2)
         ON CONFLICT (user_id, name) DO NOTHING RETURNING id",
        user_id,
        name,
    )
    .fetch_optional(db)
    .await
}

/// Renames the portfolio `id` of `user_id`; `None` if there is none. A unique violation of
/// [`NAME_KEY`] if the user has another of that name.
pub async fn rename(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    id: Uuid,
    name: &str,
) -> Result<Option<Portfolio>, sqlx::Error> {
    sqlx::query_as!(
        Portfolio,
        "UPDATE portfolios SET name = $3 WHERE id = $1 AND user_id = $2
         RETURNING id, name, created_at",
        id,
        user_id,
        name,
    )
    .fetch_optional(db)
    .await
}

/// Deletes the portfolio `id` of `user_id` and its positions; whether there was one.
pub async fn delete(db: impl PgExecutor<'_>, user_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query!(
        "DELETE FROM portfolios WHERE id = $1 AND user_id = $2",
        id,
        user_id,
    )
    .execute(db)
    .await?;
    Ok(deleted.rows_affected() > 0)
}

/// One row of `positions`.
#[derive(Debug)]
pub struct PositionRow {
    /// Its id.
    pub id: Uuid,
    /// The ticker.
    pub symbol: String,
    /// Shares held (negative for a short position).
    pub quantity: Decimal,
    /// Cost per share.
    pub cost_basis: Decimal,
    /// The day it was opened.
    pub opened_at: NaiveDate,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// A position's values, as written.
#[derive(Debug, Clone, Copy)]
pub struct PositionValues<'a> {
    /// The ticker.
    pub symbol: &'a str,
    /// Shares held, never zero (the table's CHECK).
    pub quantity: Decimal,
    /// Cost per share, at least 0 (the table's CHECK).
    pub cost_basis: Decimal,
    /// The day it was opened.
    pub opened_at: NaiveDate,
}

/// The positions of `portfolio_id`, by symbol then opening date.
pub async fn positions(
    db: impl PgExecutor<'_>,
    portfolio_id: Uuid,
) -> Result<Vec<PositionRow>, sqlx::Error> {
    sqlx::query_as!(
        PositionRow,
        "SELECT id, symbol, quantity, cost_basis, opened_at, created_at
           FROM positions WHERE portfolio_id = $1
          ORDER BY symbol, opened_at, id",
        portfolio_id,
    )
    .fetch_all(db)
    .await
}

/// The position `id` of `portfolio_id`.
pub async fn position(
    db: impl PgExecutor<'_>,
    portfolio_id: Uuid,
    id: Uuid,
) -> Result<Option<PositionRow>, sqlx::Error> {
    sqlx::query_as!(
        PositionRow,
        "SELECT id, symbol, quantity, cost_basis, opened_at, created_at
           FROM positions WHERE id = $1 AND portfolio_id = $2",
        id,
        portfolio_id,
    )
    .fetch_optional(db)
    .await
}

/// Adds a position to `portfolio_id`.
pub async fn add_position(
    db: impl PgExecutor<'_>,
    portfolio_id: Uuid,
    values: PositionValues<'_>,
) -> Result<PositionRow, sqlx::Error> {
    sqlx::query_as!(
        PositionRow,
        "INSERT INTO positions (portfolio_id, symbol, quantity, cost_basis, opened_at)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, symbol, quantity, cost_basis, opened_at, created_at",
        portfolio_id,
        values.symbol,
        values.quantity,
        values.cost_basis,
        values.opened_at,
    )
    .fetch_one(db)
    .await
}

/// Replaces every value of the position `id` of `portfolio_id`; `None` if there is none.
pub async fn replace_position(
    db: impl PgExecutor<'_>,
    portfolio_id: Uuid,
    id: Uuid,
    values: PositionValues<'_>,
) -> Result<Option<PositionRow>, sqlx::Error> {
    sqlx::query_as!(
        PositionRow,
        "UPDATE positions SET symbol = $3, quantity = $4, cost_basis = $5, opened_at = $6
          WHERE id = $1 AND portfolio_id = $2
         RETURNING id, symbol, quantity, cost_basis, opened_at, created_at",
        id,
        portfolio_id,
        values.symbol,
        values.quantity,
        values.cost_basis,
        values.opened_at,
    )
    .fetch_optional(db)
    .await
}

/// Deletes the position `id` of `portfolio_id`; whether there was one.
pub async fn delete_position(
    db: impl PgExecutor<'_>,
    portfolio_id: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query!(
        "DELETE FROM positions WHERE id = $1 AND portfolio_id = $2",
        id,
        portfolio_id,
    )
    .execute(db)
    .await?;
    Ok(deleted.rows_affected() > 0)
}

/// One position of a valuation: decimals as Postgres prints them, trailing zeros trimmed; the
/// price columns `None` when the symbol has no bar, the totals the same on every row.
#[derive(Debug)]
pub struct SummaryRow {
    /// The position's id.
    pub id: Uuid,
    /// The ticker.
    pub symbol: String,
    /// Shares held.
    pub quantity: String,
    /// Cost per share.
    pub cost_basis: String,
    /// The latest close.
    pub price: Option<String>,
    /// Its trading day.
    pub price_date: Option<NaiveDate>,
    /// quantity × price.
    pub market_value: Option<String>,
    /// quantity × cost basis, priced positions only.
    pub cost: Option<String>,
    /// market value − cost.
    pub unrealized_pnl: Option<String>,
    /// Sum of the market values.
    pub total_market_value: Option<String>,
    /// Sum of the priced costs.
    pub total_cost: Option<String>,
    /// Sum of the unrealized P&L.
    pub total_unrealized_pnl: Option<String>,
    /// The most recent trading day among the closes used.
    pub as_of: Option<NaiveDate>,
}

/// The positions of `portfolio_id` valued at the latest close of each symbol, by symbol then
/// opening date.
pub async fn summary(
    db: impl PgExecutor<'_>,
    portfolio_id: Uuid,
) -> Result<Vec<SummaryRow>, sqlx::Error> {
    // Arithmetic on `numeric` in Postgres: exact at any size; trim_scale drops the trailing
    // zeros a product accumulates (10.00000000 × 187.442500 has 14 places). The totals are
    // window sums over the same rows, so they always agree with the positions listed.
    // `+ 0 * lp.close` makes a cost NULL when there is no price, so costs, like values, count
    // only for priced positions.
    sqlx::query_as!(
        SummaryRow,
        r#"SELECT p.id AS "id!", p.symbol AS "symbol!",
                  trim_scale(p.quantity)::text AS "quantity!",
                  trim_scale(p.cost_basis)::text AS "cost_basis!",
                  trim_scale(lp.close)::text AS price,
                  lp.date AS "price_date?",
                  trim_scale(p.quantity * lp.close)::text AS market_value,
                  trim_scale(p.quantity * p.cost_basis + 0 * lp.close)::text AS cost,
                  trim_scale(p.quantity * (lp.close - p.cost_basis))::text AS unrealized_pnl,
                  trim_scale(sum(p.quantity * lp.close) OVER ())::text AS total_market_value,
                  trim_scale(sum(p.quantity * p.cost_basis + 0 * lp.close) OVER ())::text AS total_cost,
                  trim_scale(sum(p.quantity * (lp.close - p.cost_basis)) OVER ())::text
                      AS total_unrealized_pnl,
                  max(lp.date) OVER () AS as_of
             FROM positions p
             LEFT JOIN LATERAL (
                 SELECT d.date, d.close FROM daily_prices d
                  WHERE d.symbol = p.symbol ORDER BY d.date DESC LIMIT 1
             ) lp ON true
            WHERE p.portfolio_id = $1
            ORDER BY p.symbol, p.opened_at, p.id"#,
        portfolio_id,
    )
    .fetch_all(db)
    .await
}
