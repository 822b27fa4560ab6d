//! `symbols`: the tracked universe the API manages and the ETL loads.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

/// One tracked symbol.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
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

/// The primary key: a second row for a ticker violates it.
pub const PRIMARY_KEY: &str = "symbols_pkey";

/// Every tracked symbol, in alphabetical order.
pub async fn list(db: &PgPool) -> Result<Vec<Symbol>, sqlx::Error> {
    sqlx::query_as!(
        Symbol,
        "SELECT symbol, name, active, created_at FROM symbols ORDER BY symbol"
    )
    .fetch_all(db)
    .await
}

/// Adds `symbol`; a unique violation of [`PRIMARY_KEY`] if it is already tracked.
pub async fn create(db: &PgPool, symbol: &str, name: Option<&str>) -> Result<Symbol, sqlx::Error> {
    sqlx::query_as!(
        Symbol,
        "INSERT INTO symbols (symbol, name) VALUES ($1, $2)
         RETURNING symbol, name, active, created_at",
        symbol,
        name,
    )
    .fetch_one(db)
    .await
}

/// Adds `symbol` unless it is already tracked (the demo seed: a re-run changes nothing).
pub async fn create_if_missing(
    db: impl PgExecutor<'_>,
    symbol: &str,
    name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO symbols (symbol, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        symbol,
        name,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The ETL's universe from the database: the active rows of `symbols` and every symbol held in
/// a position (a position needs its price whether or not anyone tracks the symbol, and even if
/// its row was deactivated), each once.
pub async fn universe(db: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT symbol AS "symbol!" FROM symbols WHERE active
            UNION
           SELECT symbol FROM positions"#
    )
    .fetch_all(db)
    .await
}
