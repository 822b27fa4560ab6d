//! `daily_prices`: the bars the API reads (a symbol's range, the latest of several symbols),
//! what the ETL's catch-up asks, and the writes of the ETL and the demo seed.

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

pub mod write;

/// What a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// New (symbol, date) rows.
    pub inserted: u64,
    /// Existing rows whose values changed.
    pub updated: u64,
    /// Existing rows identical to the bar: not written.
    pub unchanged: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Self) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// The rows of [`bars`]: read through [`BarText::from_row`].
pub type BarRows = Vec<PgRow>;

/// The `limit` most recent bars of `symbol` from `start` to `end` (both included), oldest
/// first: the statement of `bars.sql`, the hot path of `GET /api/v1/prices/{symbol}`.
///
/// Deliberately not a `query_file!` macro, whose record holds a `String` per price: the rows
/// are kept and [`BarText`] borrows each price's bytes straight from them, so a year of bars
/// (260 rows, five prices each) costs no allocation per value. Measured against the checked
/// reading below, 3000 sequential reads of 260 bars on one connection (a debug build on a busy
/// 2-core host, three rounds): 2.1-2.5 ms a read here, 2.8-3.6 ms through `query_file!`, a
/// quarter or more of the time, for the same bytes. The statement is still checked
/// at compile time: [`bars_checked`] runs the same file through `query_file!`, and a test holds
/// the two readings together.
pub async fn bars(
    db: &PgPool,
    symbol: &str,
    start: NaiveDate,
    end: NaiveDate,
    limit: i64,
) -> Result<BarRows, sqlx::Error> {
    sqlx::query(include_str!("bars.sql"))
        .bind(symbol)
        .bind(start)
        .bind(end)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// One row of `bars.sql` as the checked macro decodes it (see [`bars`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedBar {
    /// The ticker.
    pub symbol: String,
    /// The trading day.
    pub date: NaiveDate,
    /// Opening price as text.
    pub open: String,
    /// Highest price as text.
    pub high: String,
    /// Lowest price as text.
    pub low: String,
    /// Closing price as text.
    pub close: String,
    /// Adjusted close as text, if any.
    pub adj_close: Option<String>,
    /// Shares traded.
    pub volume: i64,
    /// When the row last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// [`bars`] through `query_file_as!`: the compile-time check of `bars.sql` (its columns and
/// parameters against the migrations), and the reference the fast path is tested against.
pub async fn bars_checked(
    db: &PgPool,
    symbol: &str,
    start: NaiveDate,
    end: NaiveDate,
    limit: i64,
) -> Result<Vec<CheckedBar>, sqlx::Error> {
    let rows = sqlx::query_file!("src/db/prices/bars.sql", symbol, start, end, limit)
        .fetch_all(db)
        .await?;
    // A cast's result may be NULL as far as the macro knows; these columns are NOT NULL.
    let missing = || sqlx::Error::Decode("bars.sql returned a NULL in a NOT NULL column".into());
    rows.into_iter()
        .map(|r| {
            Ok(CheckedBar {
                symbol: r.symbol,
                date: r.date,
                open: r.open.ok_or_else(missing)?,
                high: r.high.ok_or_else(missing)?,
                low: r.low.ok_or_else(missing)?,
                close: r.close.ok_or_else(missing)?,
                adj_close: r.adj_close,
                volume: r.volume,
                updated_at: r.updated_at,
            })
        })
        .collect()
}

/// One bar of [`bars`], borrowed from its row.
#[derive(Debug, Clone, PartialEq)]
pub struct BarText<'r> {
    /// The trading day.
    pub date: NaiveDate,
    /// Prices as Postgres renders `numeric(20,6)` in text: `187.442500`.
    pub open: &'r [u8],
    /// See `open`.
    pub high: &'r [u8],
    /// See `open`.
    pub low: &'r [u8],
    /// See `open`.
    pub close: &'r [u8],
    /// See `open`; absent when the provider gave none.
    pub adj_close: Option<&'r [u8]>,
    /// Shares traded.
    pub volume: i64,
    /// When the row last changed, in microseconds since the Unix epoch (the ETag's input).
    pub updated_at_micros: i64,
}

/// Postgres counts `timestamptz` in microseconds from 2000-01-01 UTC.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl<'r> BarText<'r> {
    /// Reads a row of `bars.sql`. Unchecked, and the text columns as bytes: the query fixes
    /// each column's type, a checked read compares type names per value, and the server's
    /// UTF-8 needs no second validation (the writer escapes anything unusual).
    pub fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            date: row.try_get_unchecked(1)?,
            open: row.try_get_unchecked(2)?,
            high: row.try_get_unchecked(3)?,
            low: row.try_get_unchecked(4)?,
            close: row.try_get_unchecked(5)?,
            adj_close: row.try_get_unchecked(6)?,
            volume: row.try_get_unchecked(7)?,
            // `timestamptz` in binary is the i64 count itself.
            updated_at_micros: row
                .try_get_unchecked::<i64, _>(8)?
                .saturating_add(POSTGRES_EPOCH_MICROS),
        })
    }
}

/// A symbol's latest bar. Postgres renders the `numeric` prices as text (`187.442500`, every
/// digit of the column's scale), which is what the API sends: decoding them into decimals only
/// to print them again cost more than the query (docs/benchmarks.md).
#[derive(Debug)]
pub struct LatestBar {
    /// The ticker.
    pub symbol: String,
    /// The trading day.
    pub date: NaiveDate,
    /// Opening price as text.
    pub open: String,
    /// Highest price as text.
    pub high: String,
    /// Lowest price as text.
    pub low: String,
    /// Closing price as text.
    pub close: String,
    /// Adjusted close as text, if any.
    pub adj_close: Option<String>,
    /// Shares traded.
    pub volume: i64,
}

/// The latest bar of each of `symbols` that has one, in no particular order.
pub async fn latest(db: &PgPool, symbols: &[String]) -> Result<Vec<LatestBar>, sqlx::Error> {
    sqlx::query_as!(
        LatestBar,
        r#"SELECT DISTINCT ON (symbol)
                  symbol, date, open::text AS "open!", high::text AS "high!", low::text AS "low!",
                  close::text AS "close!", adj_close::text AS adj_close, volume
             FROM daily_prices
            WHERE symbol = ANY($1)
            ORDER BY symbol, date DESC"#,
        symbols,
    )
    .fetch_all(db)
    .await
}

/// The date of the last stored bar of each of `symbols` from `since` on, not counting the bars
/// whose source is `except` (the demo seed's): one index range per symbol.
pub async fn last_stored(
    db: &PgPool,
    symbols: &[String],
    since: NaiveDate,
    except: &str,
) -> Result<HashMap<String, NaiveDate>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT symbol, max(date) AS "last!" FROM daily_prices
            WHERE symbol = ANY($1) AND date >= $2 AND source <> $3
            GROUP BY symbol"#,
        symbols,
        since,
        except,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.symbol, r.last)).collect())
}
