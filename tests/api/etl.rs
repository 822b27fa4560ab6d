//! `sigmasight etl` against providers faked by `wiremock` on loopback and a real Postgres.
//!
//! Most tests call `etl::run` in-process with a fixed "now" and millisecond backoffs; those
//! about exit codes, signals and log lines run the binary.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use figment::Figment;
use serde_json::{json, Value};
use sigmasight::config::{Config, Provider};
use sigmasight::db::etl_runs::{self as runs, Status};
use sigmasight::etl::client::RetryPolicy;
use sigmasight::etl::{self, Dates, EtlError, Options, Outcome, Request};
use sqlx::{Executor, PgConnection};
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{config, connect, fresh_database, migrated_database, Process};

pub(crate) const FMP_KEY: &str = "fmp-test-key-3f9c";
pub(crate) const POLYGON_KEY: &str = "polygon-test-key-8d2e";
pub(crate) const FMP_PATH: &str = "/stable/historical-price-eod/full";

/// Wednesday 2025-01-15, noon in New York: the latest completed trading day is the 14th.
pub(crate) fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, 17, 0, 0).unwrap()
}

pub(crate) fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Fast retries, a short timeout, a fixed now.
pub(crate) fn options(now: DateTime<Utc>) -> Options {
    Options {
        now,
        retry: RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
        },
        request_timeout: Duration::from_millis(500),
        concurrency: 4,
    }
}

/// A configuration whose providers are `fmp` and (if given) `polygon`, no benchmark symbols
/// unless a test adds them, and no client-side rate limit to speak of.
pub(crate) fn etl_config(
    database: &str,
    fmp: &MockServer,
    polygon: Option<&MockServer>,
    customize: impl FnOnce(Figment) -> Figment,
) -> Config {
    config(database, |f| {
        let mut f = f
            .merge(("fmp_api_key", FMP_KEY))
            .merge(("fmp_base_url", fmp.uri()))
            .merge(("fmp_requests_per_minute", 600_000))
            .merge(("polygon_requests_per_minute", 600_000))
            .merge(("etl_benchmark_symbols", ""));
        if let Some(polygon) = polygon {
            f = f
                .merge(("polygon_api_key", POLYGON_KEY))
                .merge(("polygon_base_url", polygon.uri()));
        }
        customize(f)
    })
}

pub(crate) fn request(dates: Dates, symbols: &[&str]) -> Request {
    Request {
        dates,
        symbols: Some(symbols.iter().map(|s| s.to_string()).collect()),
        provider: None,
    }
}

pub(crate) async fn run(config: &Config, request: Request, now: DateTime<Utc>) -> Outcome {
    etl::run(config, request, options(now), std::future::pending())
        .await
        .expect("the run is recorded")
}

/// FMP's stable payload for `days` (newest first, as FMP sends it); prices derive from the day.
pub(crate) fn fmp_body(symbol: &str, days: &[&str]) -> String {
    let mut bars: Vec<Value> = days
        .iter()
        .map(|day| {
            let n: u32 = day[8..10].parse().unwrap();
            json!({
                "symbol": symbol, "date": day,
                "open": format!("{}.25", 100 + n).parse::<serde_json::Number>().unwrap(),
                "high": format!("{}.5", 101 + n).parse::<serde_json::Number>().unwrap(),
                "low": 99 + n,
                "close": format!("{}.1234", 100 + n).parse::<serde_json::Number>().unwrap(),
                "volume": 1_000_000 + n, "change": 0.5, "changePercent": 0.49, "vwap": 100.7
            })
        })
        .collect();
    bars.reverse();
    bars.sort_by(|a, b| b["date"].as_str().cmp(&a["date"].as_str()));
    serde_json::to_string(&bars).unwrap()
}

pub(crate) fn json_body(body: impl Into<String>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.into(), "application/json")
}

pub(crate) async fn fmp_serves(server: &MockServer, symbol: &str, response: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(FMP_PATH))
        .and(query_param("symbol", symbol))
        .and(query_param("apikey", FMP_KEY))
        .respond_with(response)
        .mount(server)
        .await;
}

/// A Polygon aggregate at instant `t` (epoch ms).
pub(crate) fn polygon_bar(t: i64, ticker: Option<&str>) -> Value {
    let mut bar = json!({"v": 7.0790813e7, "vw": 236.1, "o": 240.01, "c": 236.85, "h": 240.16, "l": 233, "t": t, "n": 812345});
    if let Some(ticker) = ticker {
        bar["T"] = json!(ticker);
    }
    bar
}

pub(crate) async fn prices(conn: &mut PgConnection) -> Vec<(String, NaiveDate, String, String)> {
    sqlx::query_as(
        "SELECT symbol, date, close::text, source FROM daily_prices ORDER BY symbol, date",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

pub(crate) async fn run_row(conn: &mut PgConnection, id: i64) -> Value {
    sqlx::query_scalar("SELECT to_jsonb(r) FROM etl_run r WHERE id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_daily_run_loads_the_active_symbols_and_benchmarks_and_records_its_success() {
    let database = migrated_database().await;
    let mut conn = connect(&database).await;
    conn.execute("INSERT INTO symbols (symbol, active) VALUES ('AAPL', true), ('MSFT', true), ('OLD', false)")
        .await
        .unwrap();
    let fmp = MockServer::start().await;
    for symbol in ["AAPL", "MSFT", "SPY"] {
        Mock::given(path(FMP_PATH))
            .and(query_param("symbol", symbol))
            .and(query_param("from", "2025-01-14"))
            .and(query_param("to", "2025-01-14"))
            .respond_with(json_body(fmp_body(symbol, &["2025-01-14"])))
            .expect(1)
            .mount(&fmp)
            .await;
    }
    Mock::given(query_param("symbol", "OLD"))
        .respond_with(json_body("[]"))
        .expect(0)
        .mount(&fmp)
        .await;
    // A one-day look-back window: the run asks for the latest completed day alone.
    let config = etl_config(&database, &fmp, None, |f| {
        f.merge(("etl_benchmark_symbols", "SPY"))
            .merge(("etl_lookback_days", 1))
    });
    let request = Request {
        dates: Dates::CatchUp,
        symbols: None,
        provider: None,
    };

    let outcome = run(&config, request, noon()).await;

    assert_eq!(outcome.status(), Status::Succeeded, "{}", outcome.summary());
    assert_eq!(
        (outcome.from, outcome.to),
        (d("2025-01-14"), d("2025-01-14"))
    );
    let rows = prices(&mut conn).await;
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        (
            "AAPL".into(),
            d("2025-01-14"),
            "114.123400".into(),
            "fmp".into()
        )
    );
    let record = run_row(&mut conn, outcome.run_id).await;
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["symbols_requested"], 3);
    assert_eq!(record["symbols_succeeded"], 3);
    assert_eq!(record["rows_inserted"], 3);
    assert_eq!(record["providers"], json!(["fmp"]));
    assert_eq!(record["date_from"], "2025-01-14");
    assert!(record["finished_at"].is_string());
}

#[tokio::test]
async fn rerunning_the_same_days_changes_nothing_and_says_so() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    let days = ["2025-01-10", "2025-01-13", "2025-01-14"];
    for symbol in ["AAPL", "SPY"] {
        fmp_serves(&fmp, symbol, json_body(fmp_body(symbol, &days))).await;
    }
    let config = etl_config(&database, &fmp, None, |f| f);
    let range = || {
        request(
            Dates::Range(d("2025-01-10"), d("2025-01-14")),
            &["AAPL", "SPY"],
        )
    };
    let first = run(&config, range(), noon()).await;
    let mut conn = connect(&database).await;
    let stamps = || async {
        sqlx::query_scalar::<_, DateTime<Utc>>(
            "SELECT updated_at FROM daily_prices ORDER BY symbol, date",
        )
        .fetch_all(&mut connect(&database).await)
        .await
        .unwrap()
    };
    let before = stamps().await;

    let second = run(&config, range(), noon()).await;

    assert_eq!(first.finish.counts.inserted, 6);
    let counts = second.finish.counts;
    assert_eq!(
        (counts.inserted, counts.updated, counts.unchanged),
        (0, 0, 6)
    );
    assert_eq!(
        stamps().await,
        before,
        "updated_at moved on an unchanged row"
    );
    assert!(
        second
            .summary()
            .contains("0 inserted, 0 updated, 6 unchanged"),
        "{}",
        second.summary()
    );
    let record = run_row(&mut conn, second.run_id).await;
    assert_eq!(record["rows_unchanged"], 6);
    assert_eq!(record["rows_inserted"], 0);
}

#[tokio::test]
async fn a_changed_bar_is_updated_and_counted() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    fmp_serves(&fmp, "AAPL", json_body(fmp_body("AAPL", &["2025-01-14"]))).await;
    let config = etl_config(&database, &fmp, None, |f| f);
    run(&config, request(Dates::CatchUp, &["AAPL"]), noon()).await;
    fmp.reset().await;
    let corrected = fmp_body("AAPL", &["2025-01-14"]).replace("1000014", "1000015");
    fmp_serves(&fmp, "AAPL", json_body(corrected)).await;

    let outcome = run(&config, request(Dates::CatchUp, &["AAPL"]), noon()).await;

    assert_eq!(outcome.finish.counts.updated, 1);
    assert_eq!(outcome.finish.counts.inserted, 0);
}

#[tokio::test]
async fn a_429_is_retried_and_then_succeeds() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    Mock::given(path(FMP_PATH))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&fmp)
        .await;
    fmp_serves(&fmp, "AAPL", json_body(fmp_body("AAPL", &["2025-01-14"]))).await;
    let config = etl_config(&database, &fmp, None, |f| f);

    let outcome = run(&config, request(Dates::CatchUp, &["AAPL"]), noon()).await;

    assert_eq!(outcome.status(), Status::Succeeded, "{}", outcome.summary());
    assert_eq!(outcome.finish.counts.inserted, 1);
}

#[tokio::test]
async fn retry_after_is_honoured_before_the_next_attempt() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    Mock::given(path(FMP_PATH))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fmp)
        .await;
    fmp_serves(&fmp, "AAPL", json_body(fmp_body("AAPL", &["2025-01-14"]))).await;
    let config = etl_config(&database, &fmp, None, |f| f);
    let started = std::time::Instant::now();

    let outcome = run(&config, request(Dates::CatchUp, &["AAPL"]), noon()).await;

    assert_eq!(outcome.status(), Status::Succeeded);
    // The backoff alone is at most 20 ms here; the second attempt waited for Retry-After.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_401_is_permanent_not_retried_and_stops_further_requests_to_the_provider() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    Mock::given(path(FMP_PATH))
        .respond_with(
            ResponseTemplate::new(401).set_body_string(r#"{"Error Message":"Invalid API KEY."}"#),
        )
        .expect(1)
        .mount(&fmp)
        .await;
    let config = etl_config(&database, &fmp, None, |f| f);
    let mut options = options(noon());
    options.concurrency = 1;

    let outcome = etl::run(
        &config,
        request(Dates::CatchUp, &["AAPL", "MSFT", "SPY"]),
        options,
        std::future::pending(),
    )
    .await
    .unwrap();

    assert_eq!(outcome.status(), Status::Failed);
    assert_eq!(outcome.finish.symbols_failed, 3);
    let errors: Vec<&str> = outcome
        .finish
        .failures
        .iter()
        .map(|f| f.error.as_str())
        .collect();
    assert!(
        errors[0].contains("refused: fmp answered HTTP 401"),
        "{errors:?}"
    );
    assert!(errors[1].starts_with("not asked"), "{errors:?}");
}

#[tokio::test]
async fn fmp_errors_in_a_200_body_send_the_symbols_to_polygon() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    let polygon = MockServer::start().await;
    fmp_serves(
        &fmp,
        "AAPL",
        json_body(r#"{"Error Message": "Limit Reach . Please upgrade your plan or visit our documentation for more details at https://site.financialmodelingprep.com/"}"#),
    )
    .await;
    // 2025-01-14 05:00 UTC, midnight in New York.
    let body = json!({"ticker": "AAPL", "status": "OK", "resultsCount": 1, "adjusted": true,
                      "results": [polygon_bar(1_736_830_800_000, None)], "request_id": "r1"});
    Mock::given(path(
        "/v2/aggs/ticker/AAPL/range/1/day/2025-01-14/2025-01-14",
    ))
    .and(header(
        "authorization",
        format!("Bearer {POLYGON_KEY}").as_str(),
    ))
    .and(query_param("adjusted", "true"))
    .respond_with(json_body(body.to_string()))
    .expect(1)
    .mount(&polygon)
    .await;
    let config = etl_config(&database, &fmp, Some(&polygon), |f| f);

    let outcome = run(
        &config,
        request(Dates::Day(d("2025-01-14")), &["AAPL"]),
        noon(),
    )
    .await;

    assert_eq!(outcome.status(), Status::Succeeded, "{}", outcome.summary());
    assert_eq!(outcome.finish.providers, ["fmp", "polygon"]);
    let rows = prices(&mut connect(&database).await).await;
    assert_eq!(
        rows,
        [(
            "AAPL".into(),
            d("2025-01-14"),
            "236.850000".into(),
            "polygon".into()
        )]
    );
    assert!(outcome.finish.failures[0].error.contains("Limit Reach"));
}

#[tokio::test]
async fn polygon_error_statuses_are_recorded_as_failures() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    let polygon = MockServer::start().await;
    // Two symbols over two trading days: per-ticker requests, AAPL first.
    Mock::given(path_regex("^/v2/aggs/ticker/MSFT/"))
        .respond_with(json_body(r#"{"status":"NOT_AUTHORIZED","request_id":"a","message":"You are not entitled to this data. Please upgrade your plan at https://polygon.io/pricing"}"#))
        .expect(1)
        .mount(&polygon)
        .await;
    Mock::given(path_regex("^/v2/aggs/ticker/AAPL/"))
        .respond_with(json_body(
            r#"{"status":"ERROR","request_id":"b","error":"Could not find ticker"}"#,
        ))
        .mount(&polygon)
        .await;
    let config = etl_config(&database, &fmp, Some(&polygon), |f| {
        f.merge(("etl_primary_provider", "polygon"))
    });
    let mut options = options(noon());
    options.concurrency = 1;
    let mut req = request(
        Dates::Range(d("2025-01-13"), d("2025-01-14")),
        &["MSFT", "AAPL"],
    );
    req.provider = Some(Provider::Polygon);
    fmp_serves(&fmp, "AAPL", json_body("[]")).await;
    fmp_serves(&fmp, "MSFT", json_body("[]")).await;

    let outcome = etl::run(&config, req, options, std::future::pending())
        .await
        .unwrap();

    assert_eq!(outcome.status(), Status::Failed);
    let errors: Vec<String> = outcome
        .finish
        .failures
        .iter()
        .map(|f| format!("{} {} {}", f.symbol, f.provider, f.error))
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("MSFT polygon not entitled: Polygon NOT_AUTHORIZED")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("AAPL polygon Polygon ERROR: Could not find ticker")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn a_request_that_times_out_is_retried_then_recorded() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    Mock::given(path(FMP_PATH))
        .respond_with(json_body("[]").set_delay(Duration::from_secs(3)))
        .expect(4)
        .mount(&fmp)
        .await;
    let config = etl_config(&database, &fmp, None, |f| f);
    let mut options = options(noon());
    options.request_timeout = Duration::from_millis(200);

    let outcome = etl::run(
        &config,
        request(Dates::CatchUp, &["AAPL"]),
        options,
        std::future::pending(),
    )
    .await
    .unwrap();

    assert_eq!(outcome.status(), Status::Failed);
    assert!(
        outcome.finish.failures[0].error.contains("timed out"),
        "{:?}",
        outcome.finish.failures
    );
}

#[tokio::test]
async fn malformed_truncated_and_empty_answers_fail_their_symbols_only() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    let polygon = MockServer::start().await;
    let good = fmp_body("GOOD", &["2025-01-14"]);
    fmp_serves(&fmp, "GOOD", json_body(good.clone())).await;
    fmp_serves(
        &fmp,
        "HTML",
        ResponseTemplate::new(200).set_body_string("<html>Bad gateway</html>"),
    )
    .await;
    fmp_serves(&fmp, "TRUNC", json_body(&good[..good.len() / 2])).await;
    fmp_serves(&fmp, "EMPTY", json_body("[]")).await;
    fmp_serves(&fmp, "OBJ", json_body("{}")).await;
    fmp_serves(&fmp, "BROKEN", json_body(r#"[{"date":"2025-01-14",}]"#)).await;
    // Polygon (asked for the day's grouped bars: 5 symbols, 1 day) has no data either: 200
    // without a `results` key.
    Mock::given(path("/v2/aggs/grouped/locale/us/market/stocks/2025-01-14"))
        .respond_with(json_body(
            r#"{"queryCount":0,"resultsCount":0,"adjusted":true,"status":"OK","request_id":"n"}"#,
        ))
        .expect(1)
        .mount(&polygon)
        .await;
    let config = etl_config(&database, &fmp, Some(&polygon), |f| f);

    let outcome = run(
        &config,
        request(
            Dates::Day(d("2025-01-14")),
            &["GOOD", "HTML", "TRUNC", "EMPTY", "OBJ", "BROKEN"],
        ),
        noon(),
    )
    .await;

    assert_eq!(outcome.status(), Status::Partial, "{}", outcome.summary());
    assert_eq!(
        (
            outcome.finish.symbols_succeeded,
            outcome.finish.symbols_failed
        ),
        (1, 5)
    );
    let errors: Vec<String> = outcome
        .finish
        .failures
        .iter()
        .map(|f| format!("{} {} {}", f.symbol, f.provider, f.error))
        .collect();
    for expected in [
        "HTML fmp unreadable response: the body is neither a JSON array nor an object",
        "BROKEN fmp unreadable response: the body is not valid JSON",
        "TRUNC fmp unreadable response: the body ends early (truncated)",
        "EMPTY fmp no data",
        "OBJ fmp no data",
        "EMPTY polygon no data",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "{expected}: {errors:?}"
        );
    }
    let record = run_row(&mut connect(&database).await, outcome.run_id).await;
    assert_eq!(record["status"], "partial");
    assert_eq!(record["symbols_failed"], 5);
    assert!(record["error_summary"]
        .as_str()
        .unwrap()
        .contains("5 symbol(s) could not be supplied"));
}

#[tokio::test]
async fn polygon_bars_are_dated_in_new_york_not_utc() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    let polygon = MockServer::start().await;
    // 2025-03-11 03:30 UTC is 23:30 on Monday 10 March in New York (EDT since the 9th);
    // 2025-03-08 04:30 UTC is 23:30 on Friday 7 March (still EST).
    let body = json!({"ticker": "AAPL", "status": "DELAYED", "adjusted": true, "request_id": "r",
        "results": [polygon_bar(1_741_408_200_000, None), polygon_bar(1_741_663_800_000, None)]});
    Mock::given(path(
        "/v2/aggs/ticker/AAPL/range/1/day/2025-03-07/2025-03-10",
    ))
    .respond_with(json_body(body.to_string()))
    .mount(&polygon)
    .await;
    let config = etl_config(&database, &fmp, Some(&polygon), |f| f);
    let mut req = request(Dates::Range(d("2025-03-07"), d("2025-03-10")), &["AAPL"]);
    req.provider = Some(Provider::Polygon);
    let now = Utc.with_ymd_and_hms(2025, 3, 12, 12, 0, 0).unwrap();

    let outcome = run(&config, req, now).await;

    assert_eq!(outcome.status(), Status::Succeeded, "{}", outcome.summary());
    let dates: Vec<NaiveDate> = prices(&mut connect(&database).await)
        .await
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(dates, [d("2025-03-07"), d("2025-03-10")]);
}

#[tokio::test]
async fn grouped_daily_requests_skip_the_weekend_and_the_holiday() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    let polygon = MockServer::start().await;
    // Friday 17 January 2025, the weekend, Martin Luther King Jr. Day on the 20th, Tuesday 21st.
    for (day, t) in [
        ("2025-01-17", 1_737_147_600_000_i64),
        ("2025-01-21", 1_737_493_200_000),
    ] {
        let body = json!({"status": "OK", "adjusted": true, "queryCount": 3, "resultsCount": 3, "request_id": day,
            "results": [polygon_bar(t, Some("AAPL")), polygon_bar(t, Some("MSFT")), polygon_bar(t, Some("SPY")), polygon_bar(t, Some("ZZZZ"))]});
        Mock::given(path(format!(
            "/v2/aggs/grouped/locale/us/market/stocks/{day}"
        )))
        .respond_with(json_body(body.to_string()))
        .expect(1)
        .mount(&polygon)
        .await;
    }
    Mock::given(path_regex(
        "^/v2/aggs/grouped/locale/us/market/stocks/2025-01-(18|19|20)$",
    ))
    .respond_with(json_body("{}"))
    .expect(0)
    .mount(&polygon)
    .await;
    let config = etl_config(&database, &fmp, Some(&polygon), |f| {
        f.merge(("etl_primary_provider", "polygon"))
    });
    let now = Utc.with_ymd_and_hms(2025, 1, 22, 12, 0, 0).unwrap();

    let outcome = run(
        &config,
        request(
            Dates::Range(d("2025-01-17"), d("2025-01-21")),
            &["AAPL", "MSFT", "SPY"],
        ),
        now,
    )
    .await;

    assert_eq!(outcome.status(), Status::Succeeded, "{}", outcome.summary());
    assert_eq!(
        outcome.finish.counts.inserted, 6,
        "3 symbols x 2 trading days"
    );
    let symbols: Vec<String> = prices(&mut connect(&database).await)
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert!(
        !symbols.contains(&"ZZZZ".to_owned()),
        "a symbol outside the universe was stored"
    );
}

#[tokio::test]
async fn rejected_bars_are_counted_recorded_and_never_written() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    let body = r#"[
      {"symbol":"AAPL","date":"2025-01-14","open":10,"high":9,"low":11,"close":10,"volume":100},
      {"symbol":"AAPL","date":"2025-01-13","open":10,"high":11,"low":9,"close":10.5,"volume":100},
      {"symbol":"AAPL","date":"2025-01-10","open":-1,"high":11,"low":9,"close":10.5,"volume":100}
    ]"#;
    fmp_serves(&fmp, "AAPL", json_body(body)).await;
    let config = etl_config(&database, &fmp, None, |f| f);

    let outcome = run(
        &config,
        request(Dates::Range(d("2025-01-10"), d("2025-01-14")), &["AAPL"]),
        noon(),
    )
    .await;

    assert_eq!(outcome.finish.rejected, 2);
    assert_eq!(outcome.finish.counts.inserted, 1);
    let rows = prices(&mut connect(&database).await).await;
    assert_eq!(
        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        [d("2025-01-13")]
    );
    let record = run_row(&mut connect(&database).await, outcome.run_id).await;
    assert_eq!(record["rows_rejected"], 2);
    let failure = &record["failures"][0];
    assert_eq!(failure["symbol"], "AAPL");
    assert_eq!(
        failure["error"],
        "2 bar(s) rejected, first 2025-01-14: high is below low"
    );
}

#[tokio::test]
async fn a_price_postgres_would_round_is_rejected_with_its_reason_and_the_rest_loads() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    // Seven decimal places in plain and in exponent form; trailing zeros round nothing.
    let aapl = r#"[
      {"symbol":"AAPL","date":"2025-01-14","open":123,"high":124,"low":122,"close":123.4567891,"volume":100},
      {"symbol":"AAPL","date":"2025-01-13","open":10.10,"high":11.000000000,"low":9.5,"close":10.5,"volume":100},
      {"symbol":"AAPL","date":"2025-01-10","open":1e-7,"high":1,"low":0,"close":0.5,"volume":100}
    ]"#;
    // Just below the column's limit, but rounding to six places would carry it over: the whole
    // batch would fail with a numeric overflow.
    let msft = r#"[
      {"symbol":"MSFT","date":"2025-01-14","open":1,"high":99999999999999.9999999,"low":1,"close":1,"volume":100}
    ]"#;
    fmp_serves(&fmp, "AAPL", json_body(aapl)).await;
    fmp_serves(&fmp, "MSFT", json_body(msft)).await;

    let mut process = Process::start(
        &[
            "etl",
            "--from",
            "2025-01-10",
            "--to",
            "2025-01-14",
            "--symbols",
            "AAPL,MSFT",
        ],
        &[
            ("DATABASE_URL", &database),
            ("FMP_API_KEY", FMP_KEY),
            ("FMP_BASE_URL", &fmp.uri()),
        ],
    );
    let status = process.wait(Duration::from_secs(30)).await;

    assert_eq!(status.code(), Some(3), "partial: {:?}", process.log_lines());
    let mut conn = connect(&database).await;
    let stored: Vec<(String, NaiveDate, String, String)> = sqlx::query_as(
        "SELECT symbol, date, open::text, high::text FROM daily_prices ORDER BY symbol, date",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        stored,
        [(
            "AAPL".to_owned(),
            d("2025-01-13"),
            "10.100000".to_owned(),
            "11.000000".to_owned()
        )]
    );
    let id: i64 = sqlx::query_scalar("SELECT id FROM etl_run")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let record = run_row(&mut conn, id).await;
    assert_eq!(record["status"], "partial");
    assert_eq!(record["rows_rejected"], 3);
    assert_eq!(record["rows_inserted"], 1);
    let errors: Vec<(&str, &str)> = record["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["symbol"].as_str().unwrap(), f["error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [
            (
                "AAPL",
                "2 bar(s) rejected, first 2025-01-14: a price has more than 6 decimal places"
            ),
            (
                "MSFT",
                "1 bar(s) rejected, first 2025-01-14: a price has more than 6 decimal places"
            ),
        ]
    );
}

#[tokio::test]
async fn a_run_left_running_is_marked_abandoned_by_the_next_run() {
    let database = migrated_database().await;
    let mut conn = connect(&database).await;
    let left: i64 = sqlx::query_scalar(
        "INSERT INTO etl_run (started_at) VALUES (now() - interval '1 day') RETURNING id",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let fmp = MockServer::start().await;
    fmp_serves(&fmp, "AAPL", json_body(fmp_body("AAPL", &["2025-01-14"]))).await;
    let config = etl_config(&database, &fmp, None, |f| f);

    run(&config, request(Dates::CatchUp, &["AAPL"]), noon()).await;

    let record = run_row(&mut conn, left).await;
    assert_eq!(record["status"], "abandoned");
    assert!(record["finished_at"].is_string());
    assert!(record["error_summary"]
        .as_str()
        .unwrap()
        .contains("without recording an outcome"));
}

#[tokio::test]
async fn a_run_while_another_holds_the_lock_is_refused_and_writes_nothing() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    let config = etl_config(&database, &fmp, None, |f| f);
    let held = runs::Lock::try_acquire(&config.database_url.connect_options())
        .await
        .unwrap()
        .expect("the lock is free");

    let in_process = etl::run(
        &config,
        request(Dates::CatchUp, &["AAPL"]),
        options(noon()),
        std::future::pending(),
    )
    .await;
    let mut process = Process::start(
        &["etl", "--symbols", "AAPL"],
        &[
            ("DATABASE_URL", &database),
            ("FMP_API_KEY", FMP_KEY),
            ("FMP_BASE_URL", &fmp.uri()),
        ],
    );
    let status = process.wait(Duration::from_secs(20)).await;

    assert!(
        matches!(in_process, Err(EtlError::Locked)),
        "{in_process:?}"
    );
    assert_eq!(status.code(), Some(4));
    assert!(process
        .log_lines()
        .iter()
        .any(|l| l.contains("another ETL run holds the lock")));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM etl_run")
        .fetch_one(&mut connect(&database).await)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    assert!(fmp.received_requests().await.unwrap().is_empty());
    held.release().await;
}

#[tokio::test]
async fn an_unmigrated_database_fails_with_a_sentence_naming_migrate() {
    let database = fresh_database().await;
    let fmp = MockServer::start().await;
    let mut process = Process::start(
        &["etl"],
        &[
            ("DATABASE_URL", &database),
            ("FMP_API_KEY", FMP_KEY),
            ("FMP_BASE_URL", &fmp.uri()),
        ],
    );

    let status = process.wait(Duration::from_secs(20)).await;

    assert_eq!(status.code(), Some(1));
    let stderr = process.stderr_lines().join("\n");
    assert!(
        stderr.contains("run `sigmasight migrate` first"),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigterm_mid_run_commits_the_current_batch_and_records_cancelled() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    Mock::given(path(FMP_PATH))
        .respond_with(
            json_body(fmp_body("X", &["2025-01-14"]).replace("\"X\"", "\"ANY\""))
                .set_delay(Duration::from_millis(150)),
        )
        .mount(&fmp)
        .await;
    let symbols: Vec<String> = (0..60).map(|i| format!("S{i:02}")).collect();
    let symbols = symbols.join(",");
    let mut process = Process::start(
        &[
            "etl",
            "--from",
            "2025-01-14",
            "--to",
            "2025-01-14",
            "--symbols",
            &symbols,
        ],
        &[
            ("DATABASE_URL", &database),
            ("FMP_API_KEY", FMP_KEY),
            ("FMP_BASE_URL", &fmp.uri()),
            ("ETL_BATCH_SIZE", "1"),
        ],
    );
    process
        .wait_for_log(|l| l["message"] == "batch committed")
        .await;

    process.terminate();
    let status = process.wait(Duration::from_secs(20)).await;

    assert_eq!(status.code(), Some(5), "{:?}", process.log_lines());
    let mut conn = connect(&database).await;
    let (state, inserted): (String, i64) =
        sqlx::query_as("SELECT status, rows_inserted FROM etl_run")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM daily_prices")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(state, "cancelled");
    assert!(stored > 0 && stored < 60, "{stored} rows");
    assert_eq!(inserted, stored, "the record counts every committed row");
    assert!(process
        .log_lines()
        .iter()
        .any(|l| l.starts_with("sigmasight: etl run") && l.contains("cancelled")));
}

#[tokio::test]
async fn api_keys_never_reach_a_log_line_or_an_error() {
    let database = migrated_database().await;
    let fmp = MockServer::start().await;
    fmp_serves(&fmp, "GOOD", json_body(fmp_body("GOOD", &["2025-01-14"]))).await;
    fmp_serves(&fmp, "DOWN", ResponseTemplate::new(503)).await;
    fmp_serves(
        &fmp,
        "HTML",
        ResponseTemplate::new(200).set_body_string("<html>"),
    )
    .await;
    // Polygon's base URL points where nothing listens: every fallback request is a connection
    // error, whose reqwest text would include the URL.
    let nowhere = format!("http://127.0.0.1:{}", crate::helpers::free_port());
    let env = [
        ("DATABASE_URL", database.as_str()),
        ("FMP_API_KEY", FMP_KEY),
        ("FMP_BASE_URL", &fmp.uri()),
        ("POLYGON_API_KEY", POLYGON_KEY),
        ("POLYGON_BASE_URL", &nowhere),
        ("ETL_MAX_RETRIES", "1"),
        ("LOG_LEVEL", "debug"),
    ];
    let mut process = Process::start(
        &["etl", "--date", "2025-01-14", "--symbols", "GOOD,DOWN,HTML"],
        &env,
    );

    let status = process.wait(Duration::from_secs(60)).await;

    assert_eq!(status.code(), Some(3), "partial: {:?}", process.log_lines());
    let config = crate::helpers::run_binary(&["config"], &env);
    let mut everything = process.log_lines();
    everything.extend(process.stderr_lines());
    everything.push(String::from_utf8_lossy(&config.stdout).into_owned());
    let failures: String = sqlx::query_scalar("SELECT failures::text FROM etl_run")
        .fetch_one(&mut connect(&database).await)
        .await
        .unwrap();
    everything.push(failures.clone());
    assert!(failures.contains("could not connect"), "{failures}");
    assert!(
        everything.iter().any(|l| l.contains("retrying")),
        "the retry path was logged"
    );
    for line in &everything {
        assert!(
            !line.contains(FMP_KEY) && !line.contains(POLYGON_KEY),
            "a key leaked: {line}"
        );
    }
}

#[test]
fn a_missing_primary_key_or_a_day_not_closed_yet_exits_2_with_a_sentence() {
    let database = "postgres://u@127.0.0.1:9/nothing";

    let no_key = crate::helpers::run_binary(&["etl"], &[("DATABASE_URL", database)]);
    let future = crate::helpers::run_binary(
        &["etl", "--date", "2999-01-04"],
        &[("DATABASE_URL", database), ("FMP_API_KEY", FMP_KEY)],
    );

    assert_eq!(no_key.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("FMP_API_KEY: required"));
    assert_eq!(future.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&future.stderr).contains("2999-01-04 has not closed yet"));
}

#[tokio::test]
async fn a_run_under_the_least_privileged_app_role_loads_and_records() {
    // Arrange: the owner migrates; the ETL connects as the app role of scripts/db/roles.sql.
    let database = fresh_database().await;
    let roles = crate::roles::Roles::unique();
    roles.apply(&database);
    let owner = crate::roles::as_user(&database, &roles.owner);
    sigmasight::migrate::run(&sigmasight::config::DatabaseUrl::parse(&owner).unwrap())
        .await
        .unwrap();
    connect(&database)
        .await
        .execute("INSERT INTO etl_run (status) VALUES ('running')")
        .await
        .unwrap();
    let fmp = MockServer::start().await;
    fmp_serves(&fmp, "SPY", json_body(fmp_body("SPY", &["2025-01-14"]))).await;
    let app = crate::roles::as_user(&database, &roles.app);
    let config = etl_config(&app, &fmp, None, |f| f);

    let outcome = run(&config, request(Dates::CatchUp, &["SPY"]), noon()).await;

    assert_eq!(outcome.status(), Status::Succeeded, "{}", outcome.summary());
    let mut conn = connect(&database).await;
    assert_eq!(prices(&mut conn).await.len(), 1);
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM etl_run ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(statuses, ["abandoned", "succeeded"]);
}
