//! The ETL's provider in `scripts/bench.sh`: a local stand-in for FMP's stable end-of-day
//! endpoint, so that the benchmark measures the ETL (HTTP client, JSON, validation, upsert) and
//! not the internet. It answers any symbol with a bar for every NYSE trading day from `from` to
//! `to` (the service's own calendar), newest first, with prices that vary by symbol and day, in
//! the shape and field set FMP sends.
//!
//! Usage: `provider-double PORT` (0 picks a free port); prints `listening on ADDR` once bound.

use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use sigmasight::etl::calendar;
use std::collections::HashMap;
use std::fmt::Write;

mod support;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `GET /stable/historical-price-eod/full?symbol=&from=&to=&apikey=`.
async fn full(Query(query): Query<HashMap<String, String>>) -> Response {
    let day = |name: &str| {
        query
            .get(name)
            .and_then(|text| text.parse::<NaiveDate>().ok())
    };
    match (query.get("symbol"), day("from"), day("to")) {
        (Some(symbol), Some(from), Some(to)) => (
            [(header::CONTENT_TYPE, "application/json")],
            body(symbol, from, to),
        )
            .into_response(),
        _ => (
            StatusCode::BAD_REQUEST,
            r#"{"Error Message":"symbol, from and to are required"}"#,
        )
            .into_response(),
    }
}

/// FMP's flat array for `symbol`, newest bar first.
fn body(symbol: &str, from: NaiveDate, to: NaiveDate) -> String {
    let days: Vec<NaiveDate> = calendar::trading_days(from, to).collect();
    let seed: u64 = symbol.bytes().map(u64::from).sum();
    let mut body = String::with_capacity(days.len() * 170 + 2);
    body.push('[');
    for (i, day) in days.iter().rev().enumerate() {
        let i = i as u64;
        let base = 50 + (seed + i) % 400;
        let cents = (seed * 7 + i * 13) % 100;
        if i > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            r#"{{"symbol":"{symbol}","date":"{day}","open":{base}.{cents:02},"high":{high}.5,"low":{low}.25,"close":{base}.{close:02},"volume":{volume},"change":0.12,"changePercent":0.3,"vwap":{base}.4}}"#,
            high = base + 2,
            low = base - 1,
            close = (cents + 31) % 100,
            volume = 1_000_000 + seed * 31 + i,
        );
    }
    body.push(']');
    body
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    support::serve(Router::new().route("/stable/historical-price-eod/full", get(full))).await
}
