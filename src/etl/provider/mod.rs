//! Market-data providers: how to ask each one for daily bars, and how to read its answers.
//!
//! Parsers turn a response body into [`RawBar`]s (every field optional, numbers kept as the
//! provider wrote them) or a [`FetchError`]; [`crate::etl::validate`] then decides which bars
//! may be stored. [`errors`] decides what every error answer of either provider means.

pub mod errors;
pub mod fmp;
pub mod polygon;

use chrono::NaiveDate;
use serde_json::Number;

pub use crate::config::Provider;

/// One bar as the provider sent it. A field the provider left out, or sent in another form
/// than the one documented, is `None`, and validation rejects the bar.
///
/// Numbers keep the provider's text (`serde_json`'s `arbitrary_precision`): `187.4425` stays
/// `187.4425`, never the nearest `f64`, and validation reads the digits as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBar {
    /// The ticker.
    pub symbol: String,
    /// The New York trading day.
    pub date: Option<NaiveDate>,
    /// Opening price.
    pub open: Option<Number>,
    /// Highest price.
    pub high: Option<Number>,
    /// Lowest price.
    pub low: Option<Number>,
    /// Closing price.
    pub close: Option<Number>,
    /// Close adjusted for splits and dividends, when the provider gives one.
    pub adj_close: Option<Number>,
    /// Shares traded.
    pub volume: Option<Number>,
}

/// Why a request for bars gave none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The provider refused the account: the key (401), the plan's quota (FMP's "Limit Reach"),
    /// an endpoint the plan lacks. Not retried, and no further request goes to it during this
    /// run (see [`errors`]).
    #[error("refused: {0}")]
    Refused(String),
    /// The provider refused this request's data: a ticker or a timeframe outside the plan (FMP's
    /// 402, Polygon's `NOT_AUTHORIZED`). Not retried; the symbol fails at this provider, which
    /// keeps serving the others, and the other provider may still be asked for it.
    #[error("not entitled: {0}")]
    NotEntitled(String),
    /// 429, 5xx, a timeout or a reset connection, still failing after every retry.
    #[error("{0}")]
    Transient(String),
    /// Any other error the provider reported for this request (404, an unknown symbol).
    #[error("{0}")]
    Provider(String),
    /// The body is not the JSON the provider documents (malformed, truncated, another shape).
    #[error("unreadable response: {0}")]
    Malformed(String),
    /// The run's deadline passed before the request could succeed.
    #[error("the run's deadline passed (ETL_DEADLINE_SECONDS)")]
    Deadline,
}

impl FetchError {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }

    /// Whether the provider should not be asked again during this run.
    pub fn disables_provider(&self) -> bool {
        matches!(self, Self::Refused(_) | Self::Deadline)
    }
}

/// The first non-whitespace byte of a body: how the shape of an answer is told apart without
/// buffering it into an untyped value first.
pub(crate) fn first_byte(body: &[u8]) -> Option<u8> {
    body.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// A parse error as one short sentence, without echoing the body (it may be large).
pub(crate) fn malformed(error: &serde_json::Error) -> FetchError {
    FetchError::Malformed(format!(
        "{} at line {} column {}",
        match error.classify() {
            serde_json::error::Category::Eof => "the body ends early (truncated)",
            serde_json::error::Category::Syntax => "the body is not valid JSON",
            serde_json::error::Category::Data => "the JSON has an unexpected shape",
            serde_json::error::Category::Io => "the body could not be read",
        },
        error.line(),
        error.column()
    ))
}
