//! The ETL's throughput and memory, measured (a script, not a timed test): a 10-year backfill of
//! 500 symbols (~1.26 million bars) from a local FMP double into the database of `DATABASE_URL`,
//! the same backfill again (every row unchanged), then the upsert alone on pre-built batches.
//!
//! `scripts/bench-etl.sh` runs it in release mode against a throwaway PostgreSQL. Targets: the
//! upsert at 100,000 bars/s or more, the backfill under a minute, peak memory under 100 MB.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use sigmasight::config::{Config, DatabaseUrl, Provider};
use sigmasight::etl::client::RetryPolicy;
use sigmasight::etl::validate::Bar;
use sigmasight::etl::{self, calendar, load, Dates, Options, Request};
use sqlx::{Connection, Executor, PgConnection};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request as HttpRequest, Respond, ResponseTemplate};

const SYMBOLS: usize = 500;
const FIRST_DAY: &str = "2016-01-04";
const LAST_DAY: &str = "2025-12-31";

/// Serves FMP's stable payload for any symbol: every trading day of the range, newest first,
/// with prices that vary by symbol and day.
struct SyntheticFmp {
    days: Vec<NaiveDate>,
}

impl Respond for SyntheticFmp {
    fn respond(&self, request: &HttpRequest) -> ResponseTemplate {
        let symbol = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "symbol")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let seed: u64 = symbol.bytes().map(u64::from).sum();
        let mut body = String::with_capacity(self.days.len() * 160);
        body.push('[');
        for (i, day) in self.days.iter().rev().enumerate() {
            let base = 50 + (seed + i as u64) % 400;
            let cents = (seed * 7 + i as u64 * 13) % 100;
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                r#"{{"symbol":"{symbol}","date":"{day}","open":{base}.{cents:02},"high":{}.5,"low":{}.25,"close":{base}.{:02},"volume":{},"change":0.12,"changePercent":0.3,"vwap":{base}.4}}"#,
                base + 2,
                base - 1,
                (cents + 31) % 100,
                1_000_000 + seed * 31 + i as u64,
            ));
        }
        body.push(']');
        ResponseTemplate::new(200).set_body_raw(body, "application/json")
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn rate(bars: u64, elapsed: Duration) -> f64 {
    bars as f64 / elapsed.as_secs_f64()
}

async fn fresh_database(admin: &str) -> anyhow::Result<String> {
    let name = format!("sigmasight_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(admin).await?;
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await?;
    conn.close().await?;
    let mut url = url::Url::parse(admin)?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin = std::env::var("DATABASE_URL").map_err(|_| {
        anyhow::anyhow!("DATABASE_URL must name a server where a database may be created")
    })?;
    let database = fresh_database(&admin).await?;
    sigmasight::migrate::run(&DatabaseUrl::parse(&database).map_err(anyhow::Error::msg)?).await?;

    let from: NaiveDate = FIRST_DAY.parse()?;
    let to: NaiveDate = LAST_DAY.parse()?;
    let days: Vec<NaiveDate> = calendar::trading_days(from, to).collect();
    let fmp = MockServer::start().await;
    Mock::given(path("/stable/historical-price-eod/full"))
        .respond_with(SyntheticFmp { days: days.clone() })
        .mount(&fmp)
        .await;

    let mut conn = PgConnection::connect(&database).await?;
    for i in 0..SYMBOLS {
        sqlx::query("INSERT INTO symbols (symbol) VALUES ($1)")
            .bind(format!("S{i:04}"))
            .execute(&mut conn)
            .await?;
    }
    let figment = sigmasight::config::defaults()
        .merge(("database_url", database.as_str()))
        .merge(("fmp_api_key", "bench-key"))
        .merge(("fmp_base_url", fmp.uri()))
        .merge(("fmp_requests_per_minute", 1_000_000))
        .merge(("etl_benchmark_symbols", ""))
        .merge(("etl_deadline_seconds", 3600));
    let config = Config::from_figment(&figment)?;
    let options = Options {
        now: Utc
            .with_ymd_and_hms(2026, 1, 2, 17, 0, 0)
            .single()
            .unwrap_or_else(Utc::now),
        retry: RetryPolicy::new(2),
        request_timeout: Duration::from_secs(30),
        concurrency: 4,
    };
    let request = || Request {
        dates: Dates::Range(from, to),
        symbols: None,
        provider: Some(Provider::Fmp),
    };
    println!(
        "backfill: {SYMBOLS} symbols x {} trading days ({FIRST_DAY} to {LAST_DAY}) from a local FMP double",
        days.len()
    );

    let started = Instant::now();
    let first = etl::run(&config, request(), options.clone(), std::future::pending()).await?;
    let first_time = started.elapsed();
    let bars = first.finish.counts.inserted;
    println!(
        "  first run:  {} in {:.1} s: {:.0} bars/s end to end ({})",
        bars,
        first_time.as_secs_f64(),
        rate(bars, first_time),
        first.summary()
    );

    let started = Instant::now();
    let second = etl::run(&config, request(), options, std::future::pending()).await?;
    let second_time = started.elapsed();
    println!(
        "  rerun:      {} unchanged in {:.1} s: {:.0} bars/s end to end ({} inserted, {} updated)",
        second.finish.counts.unchanged,
        second_time.as_secs_f64(),
        rate(second.finish.counts.unchanged, second_time),
        second.finish.counts.inserted,
        second.finish.counts.updated
    );
    println!(
        "  peak RSS after both runs (VmHWM): {:.1} MB",
        peak_rss_mb()
    );

    // The upsert alone: 200,000 new bars, pre-built, in batches of the default size.
    let db = sqlx::PgPool::connect(&database).await?;
    let batch = config.etl.batch_size;
    let bars: Vec<(Bar, Provider)> = (0..200_000u32)
        .map(|i| {
            let price = Decimal::new(10_000 + i64::from(i % 5000), 2);
            (
                Bar {
                    symbol: format!("U{:03}", i / 2000),
                    date: days[(i % 2000) as usize],
                    open: price,
                    high: price + Decimal::ONE,
                    low: price - Decimal::ONE,
                    close: price,
                    adj_close: Some(price),
                    volume: i64::from(i),
                },
                Provider::Fmp,
            )
        })
        .collect();
    let upsert = |bars: Vec<(Bar, Provider)>| {
        let db = db.clone();
        async move {
            // The ETL's own loader, fed pre-built bars: its batching and parallel writes.
            let (tx, rx) = tokio::sync::mpsc::channel(8);
            let loader = tokio::spawn(load::consume(db, rx, batch));
            for chunk in bars.chunks(1000) {
                tx.send(load::Message::Bars(chunk.to_vec())).await?;
            }
            drop(tx);
            anyhow::Ok(loader.await??)
        }
    };
    let started = Instant::now();
    let inserted = upsert(bars.clone()).await?.inserted;
    let upsert_time = started.elapsed();
    let started = Instant::now();
    let unchanged = upsert(bars).await?.unchanged;
    let unchanged_time = started.elapsed();
    println!(
        "upsert alone: {inserted} new bars at {:.0} bars/s; {unchanged} unchanged at {:.0} bars/s (batches of {batch})",
        rate(inserted, upsert_time),
        rate(unchanged, unchanged_time)
    );
    db.close().await;

    let mut admin_conn = PgConnection::connect(&admin).await?;
    let name = database.rsplit('/').next().unwrap_or_default().to_owned();
    admin_conn
        .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
        .await?;
    Ok(())
}
