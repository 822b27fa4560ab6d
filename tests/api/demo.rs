//! `sigmasight seed --demo`'s synthetic bars: the demo is priced without provider keys, a rerun
//! changes nothing, a provider's bar is never overwritten, and the ETL replaces demo bars.

use chrono::Utc;
use serde_json::Value;
use sigmasight::db::etl_runs::Status;
use sigmasight::etl::calendar::{latest_completed_trading_day, trading_days};
use sigmasight::etl::Dates;
use sigmasight::seed;
use sqlx::PgConnection;
use wiremock::MockServer;

use crate::etl::{d, etl_config, noon, request, run};
use crate::etl_catchup::{asked, fmp_answers_every_weekday};
use crate::helpers::{connect, migrated_database, run_binary, TestApp};

const DEMO_PASSWORD: &str = "the demo password";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn seed_demo(database: &str) -> String {
    let output = run_binary(
        &["seed", "--demo"],
        &[("DATABASE_URL", database), ("DEMO_PASSWORD", DEMO_PASSWORD)],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    text(&output.stdout)
}

/// Every stored bar, every column (`updated_at` included), as text.
async fn every_bar(conn: &mut PgConnection) -> String {
    sqlx::query_scalar(
        "SELECT coalesce(string_agg(to_jsonb(p)::text, E'\\n' ORDER BY symbol, date), '')
           FROM daily_prices p",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn after_the_demo_seed_the_demo_portfolios_are_valued_and_bars_are_served_with_an_etag() {
    let app = TestApp::spawn().await;

    let stdout = seed_demo(&app.database_url);
    let login: Value = app
        .login(seed::DEMO_EMAIL, DEMO_PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let list: Value = app
        .get_as("/api/v1/portfolios", &token)
        .await
        .json()
        .await
        .unwrap();
    let prices = app.get_as("/api/v1/prices/AAPL", &token).await;

    assert!(stdout.contains("synthetic demo bar(s) written"), "{stdout}");
    let latest = latest_completed_trading_day(Utc::now());
    let portfolios = list["portfolios"].as_array().unwrap();
    assert_eq!(portfolios.len(), 2);
    for portfolio in portfolios {
        let id = portfolio["id"].as_str().unwrap();
        let summary: Value = app
            .get_as(&format!("/api/v1/portfolios/{id}/summary"), &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            summary["unpriced"].as_array().unwrap().len(),
            0,
            "{summary}"
        );
        assert!(!summary["positions"].as_array().unwrap().is_empty());
        assert_eq!(summary["as_of"], latest.to_string());
        let total: f64 = summary["total_market_value"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(total > 0.0, "{summary}");
    }
    assert_eq!(prices.status(), 200);
    assert!(prices.headers().contains_key("etag"));
    let body: Value = prices.json().await.unwrap();
    let bars = body["bars"].as_array().unwrap();
    // A year of trading days (about 250), oldest first, ending with the latest completed one.
    assert!((245..=256).contains(&bars.len()), "{} bars", bars.len());
    assert_eq!(bars.last().unwrap()["date"], latest.to_string());
}

#[tokio::test]
async fn a_second_demo_seed_writes_no_bar_and_leaves_every_bar_byte_identical() {
    let database = migrated_database().await;
    let mut conn = connect(&database).await;
    let first = seed_demo(&database);
    let before = every_bar(&mut conn).await;

    let second = seed_demo(&database);

    let after = every_bar(&mut conn).await;
    let (from, to) = seed::bars::window(Utc::now());
    let days = trading_days(from, to).count();
    assert!(
        first.contains(&format!("{} synthetic demo bar(s) written", 5 * days)),
        "{first}"
    );
    assert!(
        second.contains("0 synthetic demo bar(s) written"),
        "{second}"
    );
    assert_eq!(before, after);
}

#[tokio::test]
async fn the_demo_seed_never_overwrites_a_bar_from_a_provider() {
    let database = migrated_database().await;
    let mut conn = connect(&database).await;
    let latest = latest_completed_trading_day(Utc::now());
    sqlx::query(
        "INSERT INTO daily_prices (symbol, date, open, high, low, close, adj_close, volume, source)
         VALUES ('AAPL', $1, 1.5, 2.25, 1.25, 2.125, NULL, 777, 'fmp')",
    )
    .bind(latest)
    .execute(&mut conn)
    .await
    .unwrap();
    let real = "SELECT to_jsonb(p)::text FROM daily_prices p WHERE symbol = 'AAPL' AND date = $1";
    let before: String = sqlx::query_scalar(real)
        .bind(latest)
        .fetch_one(&mut conn)
        .await
        .unwrap();

    seed_demo(&database);

    let after: String = sqlx::query_scalar(real)
        .bind(latest)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let sources: Vec<(String, i64)> = sqlx::query_as(
        "SELECT source, count(*) FROM daily_prices WHERE symbol = 'AAPL' GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(before, after);
    let (from, to) = seed::bars::window(Utc::now());
    let days = trading_days(from, to).count() as i64;
    assert_eq!(
        sources,
        [("demo".to_owned(), days - 1), ("fmp".to_owned(), 1)]
    );
}

#[tokio::test]
async fn the_etl_catches_up_over_demo_bars_and_replaces_them_with_the_providers() {
    // Arrange: demo bars for the year up to Tuesday 2025-01-14.
    let database = migrated_database().await;
    let pool = sqlx::PgPool::connect(&database).await.unwrap();
    let written = seed::bars::write(&pool, noon()).await.unwrap();
    let fmp = MockServer::start().await;
    fmp_answers_every_weekday(&fmp).await;
    let config = etl_config(&database, &fmp, None, |f| f);

    // Act: the default run (catch-up) on Wednesday 15 January, noon in New York.
    let outcome = run(&config, request(Dates::CatchUp, &["AAPL", "MSFT"]), noon()).await;

    // Assert: demo bars do not count as stored, so each symbol starts at the window's first
    // trading day (30 days back: Monday 16 December), and FMP's bars replace the demo ones.
    assert_eq!(outcome.status(), Status::Succeeded, "{}", outcome.summary());
    assert_eq!(
        asked(&fmp).await,
        [
            ("AAPL".to_owned(), d("2024-12-16"), d("2025-01-14")),
            ("MSFT".to_owned(), d("2024-12-16"), d("2025-01-14")),
        ]
    );
    let window = trading_days(d("2024-12-16"), d("2025-01-14")).count() as u64;
    assert_eq!(outcome.finish.counts.updated, 2 * window);
    assert_eq!(outcome.finish.counts.inserted, 0);
    let rows: Vec<(String, bool, i64)> = sqlx::query_as(
        "SELECT source, date >= '2024-12-16', count(*) FROM daily_prices
          WHERE symbol IN ('AAPL', 'MSFT') GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let year = trading_days(seed::bars::window(noon()).0, d("2025-01-14")).count() as i64;
    assert_eq!(
        rows,
        [
            ("demo".to_owned(), false, 2 * (year - window as i64)),
            ("fmp".to_owned(), true, 2 * window as i64),
        ]
    );
    assert_eq!(written, 5 * year as u64);
}
