//! A run without dates catches up: each symbol from the day after its last stored bar, within
//! the look-back window; the universe includes what positions hold; and a bar dated on a day the
//! exchange was closed is refused, from either provider. Against doubles that answer any range
//! with a bar for every weekday in it, holidays included, as a careless provider would.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;
use serde_json::json;
use sigmasight::config::Provider;
use sigmasight::db::etl_runs::Status;
use sigmasight::etl::calendar::trading_days;
use sigmasight::etl::{Dates, Request};
use sqlx::Executor;
use wiremock::matchers::{path, path_regex};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::etl::{
    d, etl_config, fmp_body, json_body, noon, polygon_bar, prices, request, run, run_row, FMP_PATH,
};
use crate::helpers::{connect, migrated_database};

/// The weekdays from `from` to `to` (YYYY-MM-DD), both included.
fn weekdays(from: &str, to: &str) -> Vec<String> {
    d(from)
        .iter_days()
        .take_while(|day| *day <= d(to))
        .filter(|day| !matches!(day.weekday(), Weekday::Sat | Weekday::Sun))
        .map(|day| day.to_string())
        .collect()
}

/// FMP answering `symbol`, `from` and `to` with a bar for every weekday between them.
struct FmpEveryWeekday;

impl Respond for FmpEveryWeekday {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let days = weekdays(&query["from"], &query["to"]);
        let days: Vec<&str> = days.iter().map(String::as_str).collect();
        json_body(fmp_body(&query["symbol"], &days))
    }
}

/// Polygon's per-ticker aggregates, a bar for every weekday, each starting at midnight in New
/// York.
struct PolygonEveryWeekday;

impl Respond for PolygonEveryWeekday {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        // /v2/aggs/ticker/{symbol}/range/1/day/{from}/{to}
        let parts: Vec<&str> = request.url.path().split('/').collect();
        let results: Vec<_> = weekdays(parts[8], parts[9])
            .iter()
            .map(|day| {
                let midnight = New_York
                    .from_local_datetime(&d(day).and_hms_opt(0, 0, 0).unwrap())
                    .unwrap();
                polygon_bar(midnight.timestamp_millis(), None)
            })
            .collect();
        json_body(
            json!({"ticker": parts[4], "status": "OK", "adjusted": true, "request_id": "w",
                   "resultsCount": results.len(), "results": results})
            .to_string(),
        )
    }
}

pub(crate) async fn fmp_answers_every_weekday(server: &MockServer) {
    Mock::given(path(FMP_PATH))
        .respond_with(FmpEveryWeekday)
        .mount(server)
        .await;
}

/// The (symbol, from, to) of every request FMP received, sorted.
pub(crate) async fn asked(fmp: &MockServer) -> Vec<(String, NaiveDate, NaiveDate)> {
    let mut asked: Vec<_> = fmp
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|request| {
            let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
            (query["symbol"].clone(), d(&query["from"]), d(&query["to"]))
        })
        .collect();
    asked.sort();
    asked
}

/// The stored dates of `symbol`.
async fn dates(database: &str, symbol: &str) -> Vec<NaiveDate> {
    prices(&mut connect(database).await)
        .await
        .into_iter()
        .filter(|row| row.0 == symbol)
        .map(|row| row.1)
        .collect()
}

fn catch_up() -> Request {
    Request {
        dates: Dates::CatchUp,
        symbols: None,
        provider: None,
    }
}

/// `hour`:00 UTC on `day`.
fn at(day: &str, hour: u32) -> DateTime<Utc> {
    let day = d(day);
    Utc.with_ymd_and_hms(day.year(), day.month(), day.day(), hour, 0, 0)
        .unwrap()
}

#[tokio::test]
async fn the_next_default_run_repairs_what_a_failed_run_missed_and_a_new_symbol_gets_its_window() {
    // Arrange: Wednesday 8 January's evening run loads the window for AAPL and MSFT; Friday's
    // fails at the provider; a new symbol is tracked on the Monday.
    let database = migrated_database().await;
    let mut conn = connect(&database).await;
    conn.execute("INSERT INTO symbols (symbol) VALUES ('AAPL'), ('MSFT')")
        .await
        .unwrap();
    let fmp = MockServer::start().await;
    let config = etl_config(&database, &fmp, None, |f| f);
    fmp_answers_every_weekday(&fmp).await;
    let wednesday = run(&config, catch_up(), at("2025-01-08", 23)).await;
    fmp.reset().await;
    Mock::given(path(FMP_PATH))
        .respond_with(ResponseTemplate::new(500))
        .mount(&fmp)
        .await;
    let friday = run(&config, catch_up(), at("2025-01-10", 23)).await;
    conn.execute("INSERT INTO symbols (symbol) VALUES ('NEWCO')")
        .await
        .unwrap();
    fmp.reset().await;
    fmp_answers_every_weekday(&fmp).await;

    // Act: Wednesday 15 January, noon in New York: the latest completed day is the 14th.
    let next = run(&config, catch_up(), noon()).await;

    // Assert
    assert_eq!(
        wednesday.status(),
        Status::Succeeded,
        "{}",
        wednesday.summary()
    );
    assert_eq!(friday.status(), Status::Failed, "{}", friday.summary());
    assert_eq!(next.status(), Status::Succeeded, "{}", next.summary());
    // Each symbol from the trading day after its last bar (the 9th was a closure); the new
    // one from the first trading day of the 30-day window, Monday 16 December.
    assert_eq!(
        asked(&fmp).await,
        [
            ("AAPL".to_owned(), d("2025-01-10"), d("2025-01-14")),
            ("MSFT".to_owned(), d("2025-01-10"), d("2025-01-14")),
            ("NEWCO".to_owned(), d("2024-12-16"), d("2025-01-14")),
        ]
    );
    // No gap left: every trading day of Wednesday's window up to the 14th.
    let loaded_from = wednesday.from;
    assert_eq!(loaded_from, d("2024-12-10"));
    for symbol in ["AAPL", "MSFT"] {
        assert_eq!(
            dates(&database, symbol).await,
            trading_days(loaded_from, d("2025-01-14")).collect::<Vec<_>>(),
            "{symbol}"
        );
    }
    assert_eq!(
        dates(&database, "NEWCO").await,
        trading_days(d("2024-12-16"), d("2025-01-14")).collect::<Vec<_>>()
    );
    // The record says the range the run covered and what it wrote.
    let record = run_row(&mut conn, next.run_id).await;
    assert_eq!(record["date_from"], "2024-12-16");
    assert_eq!(record["date_to"], "2025-01-14");
    let new_days = trading_days(d("2024-12-16"), d("2025-01-14")).count();
    assert_eq!(record["rows_inserted"], 2 * 3 + new_days);
    let friday = run_row(&mut conn, friday.run_id).await;
    assert_eq!(
        (&friday["status"], &friday["date_from"], &friday["date_to"]),
        (&json!("failed"), &json!("2025-01-10"), &json!("2025-01-10"))
    );
}

#[tokio::test]
async fn a_symbol_held_in_a_position_is_loaded_even_if_nobody_tracks_it() {
    // Arrange: AAPL is tracked; HELD is only held; OLD was deactivated but is still held;
    // DROPPED was deactivated and nobody holds it.
    let database = migrated_database().await;
    let mut conn = connect(&database).await;
    conn.execute(
        "INSERT INTO symbols (symbol, active) VALUES ('AAPL', true), ('OLD', false), ('DROPPED', false);
         WITH u AS (INSERT INTO users (email, password_hash)
                    VALUES ('holder@example.com', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA')
                    RETURNING id),
              p AS (INSERT INTO portfolios (user_id, name) SELECT id, 'Main' FROM u RETURNING id)
         INSERT INTO positions (portfolio_id, symbol, quantity, cost_basis, opened_at)
         SELECT p.id, s, 10, 100, '2024-06-03' FROM p, unnest(ARRAY['HELD', 'OLD', 'AAPL']) s",
    )
    .await
    .unwrap();
    let fmp = MockServer::start().await;
    fmp_answers_every_weekday(&fmp).await;
    let config = etl_config(&database, &fmp, None, |f| f.merge(("etl_lookback_days", 1)));

    // Act
    let outcome = run(&config, catch_up(), noon()).await;

    // Assert
    assert_eq!(outcome.status(), Status::Succeeded, "{}", outcome.summary());
    assert_eq!(outcome.symbols_requested, 3);
    let latest = d("2025-01-14");
    assert_eq!(
        asked(&fmp).await,
        ["AAPL", "HELD", "OLD"].map(|s| (s.to_owned(), latest, latest))
    );
    for symbol in ["AAPL", "HELD", "OLD"] {
        assert_eq!(dates(&database, symbol).await, [latest], "{symbol}");
    }
}

#[tokio::test]
async fn a_bar_dated_on_a_day_the_exchange_was_closed_is_rejected_whichever_provider_sent_it() {
    // Arrange: both doubles answer every weekday. From Monday 14 April to Friday 28 November
    // 2025 that includes six closed days: Good Friday (18 April), Memorial Day, Juneteenth,
    // Independence Day, Labor Day and Thanksgiving (27 November).
    let (from, to) = (d("2025-04-14"), d("2025-11-28"));
    let now = at("2025-12-01", 17);
    for provider in [Provider::Fmp, Provider::Polygon] {
        let database = migrated_database().await;
        let fmp = MockServer::start().await;
        let polygon = MockServer::start().await;
        fmp_answers_every_weekday(&fmp).await;
        Mock::given(path_regex("^/v2/aggs/ticker/"))
            .respond_with(PolygonEveryWeekday)
            .mount(&polygon)
            .await;
        let config = etl_config(&database, &fmp, Some(&polygon), |f| f);
        let mut req = request(Dates::Range(from, to), &["AAPL"]);
        req.provider = Some(provider);

        // Act
        let outcome = run(&config, req, now).await;

        // Assert
        assert_eq!(outcome.status(), Status::Succeeded, "{}", outcome.summary());
        assert_eq!(outcome.finish.providers, [provider.as_str()]);
        let trading: Vec<NaiveDate> = trading_days(from, to).collect();
        assert_eq!(dates(&database, "AAPL").await, trading, "{provider:?}");
        assert_eq!(outcome.finish.rejected, 6, "{provider:?}");
        assert_eq!(outcome.finish.counts.inserted, trading.len() as u64);
        let record = run_row(&mut connect(&database).await, outcome.run_id).await;
        assert_eq!(record["rows_rejected"], 6);
        // The first in the payload: FMP sends the newest bar first, Polygon the oldest.
        let first = match provider {
            Provider::Fmp => "2025-11-27",
            Provider::Polygon => "2025-04-18",
        };
        assert_eq!(
            record["failures"][0]["error"],
            format!("6 bar(s) rejected, first {first}: the exchange was closed on that date")
        );
        assert_eq!(record["failures"][0]["provider"], provider.as_str());
    }
}

/// Polygon's grouped daily bars: every one of `tickers` on the day asked.
struct PolygonGroupedDay(&'static [&'static str]);

impl Respond for PolygonGroupedDay {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let day = request.url.path().rsplit('/').next().unwrap_or_default();
        let midnight = New_York
            .from_local_datetime(&d(day).and_hms_opt(0, 0, 0).unwrap())
            .unwrap();
        let results: Vec<_> = self
            .0
            .iter()
            .map(|ticker| polygon_bar(midnight.timestamp_millis(), Some(ticker)))
            .collect();
        json_body(
            json!({"status": "OK", "adjusted": true, "request_id": day,
                   "resultsCount": results.len(), "results": results})
            .to_string(),
        )
    }
}

#[tokio::test]
async fn grouped_days_run_from_the_earliest_start_and_keep_only_the_days_each_symbol_misses() {
    // Arrange: four symbols behind by different amounts. AAPL last has Friday the 10th, MSFT and
    // QQQ Monday the 13th, SPY Tuesday the 14th, the latest completed day. Two days cover them
    // all, fewer than the four symbols: Polygon's grouped endpoint is the cheaper way.
    let database = migrated_database().await;
    connect(&database)
        .await
        .execute(
            "INSERT INTO daily_prices (symbol, date, open, high, low, close, volume, source)
             VALUES ('AAPL', '2025-01-10', 1, 1, 1, 1, 1, 'fmp'),
                    ('MSFT', '2025-01-13', 1, 1, 1, 1, 1, 'fmp'),
                    ('QQQ', '2025-01-13', 1, 1, 1, 1, 1, 'fmp'),
                    ('SPY', '2025-01-14', 1, 1, 1, 1, 1, 'fmp')",
        )
        .await
        .unwrap();
    let fmp = MockServer::start().await;
    let polygon = MockServer::start().await;
    Mock::given(path_regex("^/v2/aggs/grouped/locale/us/market/stocks/"))
        .respond_with(PolygonGroupedDay(&["AAPL", "MSFT", "QQQ", "SPY", "ZZZZ"]))
        .mount(&polygon)
        .await;
    let config = etl_config(&database, &fmp, Some(&polygon), |f| f);
    let mut req = request(Dates::CatchUp, &["AAPL", "MSFT", "QQQ", "SPY"]);
    req.provider = Some(Provider::Polygon);

    // Act
    let outcome = run(&config, req, noon()).await;

    // Assert: one request per day from the earliest start.
    assert_eq!(outcome.status(), Status::Succeeded, "{}", outcome.summary());
    let days: Vec<String> = polygon
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            r.url
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(days, ["2025-01-13", "2025-01-14"]);
    // The 13th's bars of MSFT and QQQ, already stored, are left alone; SPY's 14th, asked
    // again as the latest day, differs from what was stored and is updated.
    let counts = outcome.finish.counts;
    assert_eq!(
        (counts.inserted, counts.updated, counts.unchanged),
        (4, 1, 0),
        "AAPL 13th and 14th, MSFT and QQQ 14th inserted; SPY 14th updated"
    );
    let mut conn = connect(&database).await;
    let untouched: Vec<(String, String)> = sqlx::query_as(
        "SELECT symbol, source FROM daily_prices WHERE date = '2025-01-13' ORDER BY symbol",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        untouched,
        [("AAPL", "polygon"), ("MSFT", "fmp"), ("QQQ", "fmp")]
            .map(|(s, p)| (s.to_owned(), p.to_owned()))
    );
    let record = run_row(&mut conn, outcome.run_id).await;
    assert_eq!(
        (&record["date_from"], &record["date_to"]),
        (&json!("2025-01-13"), &json!("2025-01-14"))
    );
}
