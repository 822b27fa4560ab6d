//! A daily bar as `daily_prices` stores it: what the ETL's validation produces and the loader
//! writes.

use chrono::NaiveDate;
use rust_decimal::Decimal;

/// `daily_prices.source` of the synthetic bars `seed --demo` writes (real data loads over them:
/// the ETL's catch-up does not count them as stored).
pub const DEMO_SOURCE: &str = "demo";

/// A bar fit for `daily_prices`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// The ticker.
    pub symbol: String,
    /// The New York trading day.
    pub date: NaiveDate,
    /// Opening price.
    pub open: Decimal,
    /// Highest price.
    pub high: Decimal,
    /// Lowest price.
    pub low: Decimal,
    /// Closing price.
    pub close: Decimal,
    /// Adjusted close, when given.
    pub adj_close: Option<Decimal>,
    /// Shares traded.
    pub volume: i64,
}
