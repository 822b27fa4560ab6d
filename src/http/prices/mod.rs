//! Market data: `GET /api/v1/prices/{symbol}?start=&end=&limit=` (daily bars, ascending) and
//! `GET /api/v1/prices/latest?symbols=A,B` (the latest bar of each).
//!
//! Prices are sent as JSON strings holding the exact decimal (`"187.442500"`): a JSON number
//! would be read as a binary float by most clients (docs/api.md). A closed day's bars never
//! change, so bar lists carry an `ETag` and `Cache-Control`, and `If-None-Match` gets a 304.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::openapi::path::{Parameter, ParameterIn, ParameterStyle};
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::IntoParams;

use super::auth::AuthUser;
use super::error::ErrorBody;
use super::extract::{json_body, Json, Path, Query};
use super::rules::{self, parameter};
use super::{AppError, AppState};
use crate::db::prices::{self, BarText, LatestBar as LatestRow};
use crate::domain::Symbol;

mod body;

/// Bars returned when `limit` is not given: about a year of trading days.
pub const DEFAULT_LIMIT: i64 = 260;
/// The most bars one request returns.
pub const MAX_LIMIT: i64 = 5000;
/// The most symbols `/prices/latest` takes at once.
pub const MAX_LATEST_SYMBOLS: usize = 100;
/// How long a client or proxy may reuse a bar list without asking again.
const CACHE_CONTROL: &str = "private, max-age=60";

/// The routes under `/prices`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/prices/latest", get(latest))
        .route("/prices/{symbol}", get(bars))
}

/// One daily bar as sent: decimals as exact strings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Bar {
    /// The New York trading day.
    #[serde(serialize_with = "body::serialize_date")]
    pub date: NaiveDate,
    /// Opening price.
    pub open: String,
    /// Highest price.
    pub high: String,
    /// Lowest price.
    pub low: String,
    /// Closing price.
    pub close: String,
    /// Close adjusted for splits and dividends, when the provider gave one.
    pub adj_close: Option<String>,
    /// Shares traded.
    pub volume: i64,
}

impl From<LatestRow> for Bar {
    fn from(row: LatestRow) -> Self {
        Self {
            date: row.date,
            open: row.open,
            high: row.high,
            low: row.low,
            close: row.close,
            adj_close: row.adj_close,
            volume: row.volume,
        }
    }
}

/// `GET /prices/{symbol}`'s body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Bars {
    /// The symbol asked for.
    pub symbol: String,
    /// Its bars, oldest first.
    pub bars: Vec<Bar>,
}

/// `GET /prices/{symbol}`'s query string; values are read as text so that a bad one gets a
/// sentence naming it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BarsParams {
    start: Option<String>,
    end: Option<String>,
    limit: Option<String>,
}

/// The parameters of `GET /prices/{symbol}` as the document describes them.
pub struct BarsParameters;

impl IntoParams for BarsParameters {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let limit = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(MAX_LIMIT));
        vec![
            symbol_parameter(),
            parameter(
                "start",
                ParameterIn::Query,
                false,
                "First day, YYYY-MM-DD (included), from 1900-01-01; default: the earliest.",
                rules::date_schema(latest_date(), "A day from 1900-01-01 to 9999-12-31."),
            ),
            parameter(
                "end",
                ParameterIn::Query,
                false,
                "Last day, YYYY-MM-DD (included), to 9999-12-31; default: the latest. Before \
                 `start`, the range is empty.",
                rules::date_schema(latest_date(), "A day from 1900-01-01 to 9999-12-31."),
            ),
            parameter(
                "limit",
                ParameterIn::Query,
                false,
                "How many bars at most: 1-5000, default 260.",
                limit,
            ),
            parameter(
                "If-None-Match",
                ParameterIn::Header,
                false,
                "An ETag from an earlier answer.",
                ObjectBuilder::new().schema_type(Type::String),
            ),
        ]
    }
}

fn symbol_parameter() -> Parameter {
    parameter(
        "symbol",
        ParameterIn::Path,
        true,
        "Upper-case ticker.",
        Symbol::schema("Upper-case ticker: letters, digits and `. - ^`, at most 20."),
    )
}

fn date_param(name: &str, value: Option<&str>, default: NaiveDate) -> Result<NaiveDate, AppError> {
    match value {
        None => Ok(default),
        Some(text) => rules::parse_date(text)
            // Postgres `date` cannot hold chrono's extremes; these bounds cover any market.
            .filter(|d| (rules::earliest_date()..=latest_date()).contains(d))
            .ok_or_else(|| {
                AppError::Validation(format!(
                    "{name}: expected a date YYYY-MM-DD from 1900-01-01 to 9999-12-31, got {text:?}"
                ))
            }),
    }
}

fn latest_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or_default()
}

fn symbol_param(symbol: String) -> Result<Symbol, AppError> {
    Symbol::try_from(symbol).map_err(|e| rules::invalid("symbol", e))
}

/// The `limit` most recent bars of `symbol` from `start` to `end` (both included, default: all),
/// oldest first. `limit` is 1-5000, default 260. An `end` before `start` selects no bars.
#[utoipa::path(get, path = "/api/v1/prices/{symbol}", tag = "prices", security(("bearer" = [])),
    operation_id = "price_bars", params(BarsParameters),
    responses((status = 200, body = Bars, headers(
            ("ETag" = String, description = "The answer's weak validator (`W/\"...\"`), for `If-None-Match`"),
            ("Cache-Control" = String, description = "`private, max-age=60`"))),
        (status = 304, description = "Not modified", headers(
            ("ETag" = String, description = "The answer's weak validator (`W/\"...\"`), for `If-None-Match`"),
            ("Cache-Control" = String, description = "`private, max-age=60`"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn bars(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(symbol): Path<String>,
    Query(params): Query<BarsParams>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let symbol = symbol_param(symbol)?;
    let start = date_param("start", params.start.as_deref(), rules::earliest_date())?;
    // An `end` before `start` is an empty range, not an error: the document cannot relate two
    // parameters, and a client built from it must not be refused.
    let end = date_param("end", params.end.as_deref(), latest_date())?;
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                AppError::Validation(format!(
                    "limit: expected an integer from 1 to {MAX_LIMIT}, got {text:?}"
                ))
            })?,
    };
    let rows = prices::bars(&state.db, &symbol, start, end, limit).await?;
    let bars = rows
        .iter()
        .map(BarText::from_row)
        .collect::<Result<Vec<_>, _>>()?;

    let etag = etag(&symbol, start, end, limit, &bars);
    let cache_headers = [
        (header::ETAG, etag.clone()),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ),
    ];
    if matches_etag(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, cache_headers).into_response());
    }
    Ok((cache_headers, json_body(body::bars_json(&symbol, &bars))).into_response())
}

/// A weak validator for one answer: the request's range and the rows' count and latest change.
/// A bar rewritten by the ETL moves `updated_at`, so the tag changes with the body. Weak
/// (`W/"..."`) because one answer is sent in several encodings (`compression`), which a strong
/// tag would claim are the same bytes; `If-None-Match` compares tags weakly anyway.
fn etag(
    symbol: &str,
    start: NaiveDate,
    end: NaiveDate,
    limit: i64,
    rows: &[BarText<'_>],
) -> HeaderValue {
    let newest = rows.iter().map(|r| r.updated_at_micros).max();
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "{symbol}|{start}|{end}|{limit}|{}|{}|{:?}|{:?}",
        rows.len(),
        newest.unwrap_or(0),
        rows.first().map(|r| r.date),
        rows.last().map(|r| r.date),
    ));
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("W/\"{hex}\"")).unwrap_or(HeaderValue::from_static("W/\"0\""))
}

/// Whether `If-None-Match` names `etag` (or is `*`), compared weakly as RFC 9110 has it for
/// `If-None-Match`: by the opaque part, with or without `W/`.
fn matches_etag(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or_default().trim_start_matches("W/");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == ours)
}

/// `GET /prices/latest`'s query string.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatestParams {
    symbols: Option<String>,
}

/// The parameters of `GET /prices/latest` as the document describes them: `symbols` is a list
/// sent as `symbols=A,B` (form style, not exploded).
pub struct LatestParameters;

impl IntoParams for LatestParameters {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let symbols = ArrayBuilder::new()
            .items(Symbol::schema("Upper-case ticker."))
            .min_items(Some(1))
            .max_items(Some(MAX_LATEST_SYMBOLS));
        let mut symbols = parameter(
            "symbols",
            ParameterIn::Query,
            true,
            "1-100 tickers separated by commas; a repeated one counts towards the 100 and is \
             answered once.",
            symbols,
        );
        symbols.style = Some(ParameterStyle::Form);
        symbols.explode = Some(false);
        vec![symbols]
    }
}

/// One symbol's latest bar.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LatestBar {
    /// The symbol.
    pub symbol: String,
    /// Its most recent bar.
    #[serde(flatten)]
    pub bar: Bar,
}

/// `GET /prices/latest`'s body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Latest {
    /// The latest bar of each symbol that has one, in the order asked.
    pub prices: Vec<LatestBar>,
    /// The symbols asked for that have no bar at all.
    pub missing: Vec<String>,
}

/// The latest bar of each of `symbols` (comma-separated, 1-100, duplicates answered once).
#[utoipa::path(get, path = "/api/v1/prices/latest", tag = "prices", security(("bearer" = [])),
    operation_id = "latest_prices", params(LatestParameters),
    responses((status = 200, body = Latest), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn latest(
    State(state): State<AppState>,
    _user: AuthUser,
    Query(params): Query<LatestParams>,
) -> Result<Json<Latest>, AppError> {
    let symbols = latest_symbols(params.symbols.as_deref().unwrap_or_default())?;
    let rows = prices::latest(&state.db, &symbols).await?;
    let mut rows: HashMap<String, LatestRow> =
        rows.into_iter().map(|r| (r.symbol.clone(), r)).collect();
    let mut prices = Vec::with_capacity(rows.len());
    let mut missing = Vec::new();
    for symbol in symbols {
        match rows.remove(&symbol) {
            Some(row) => prices.push(LatestBar {
                symbol,
                bar: Bar::from(row),
            }),
            None => missing.push(symbol),
        }
    }
    Ok(Json(Latest { prices, missing }))
}

/// The tickers of `symbols=A,B`, each once, in the order first asked. The count is checked
/// before anything else, on the list as sent (repeats included): a URI may be 64 kB (hyper's
/// limit), some 30,000 entries, and such a list costs one pass, not a comparison of every pair.
fn latest_symbols(text: &str) -> Result<Vec<String>, AppError> {
    let count = text.split(',').count();
    if text.is_empty() || count > MAX_LATEST_SYMBOLS {
        let got = if text.is_empty() { 0 } else { count };
        return Err(AppError::Validation(format!(
            "symbols: expected 1 to {MAX_LATEST_SYMBOLS} comma-separated tickers, got {got}"
        )));
    }
    let mut seen = HashSet::with_capacity(count);
    let mut symbols = Vec::with_capacity(count);
    for symbol in text.split(',') {
        if !Symbol::is_valid(symbol) {
            return Err(AppError::Validation(format!(
                "symbols: expected upper-case tickers such as AAPL or BRK.B separated by commas, \
                 got {symbol:?}"
            )));
        }
        if seen.insert(symbol) {
            symbols.push(symbol.to_owned());
        }
    }
    Ok(symbols)
}
