//! The daily OHLCV ETL (`sigmasight etl`): fetch bars for the tracked universe from FMP (or
//! Polygon), fall back to the other provider for what the first could not supply, validate,
//! upsert in batches, and record the run, all under a single-writer lock.
//!
//! [`run`] is the one entry point; the CLI and the tests call it. The modules below each own one
//! step: [`calendar`] (which days), [`catchup`] (which days each symbol is missing), [`provider`]
//! (what the providers say), [`client`] (how to ask them), [`supply`] (who is asked for what),
//! [`validate`] (with [`numeric`], which reads a provider's number exactly), [`load`], [`runs`].
//! [`import::run`] is the entry point of a CSV import, which shares validation, loading and the
//! run record.

pub mod calendar;
pub mod catchup;
pub mod client;
pub mod import;
pub mod load;
pub mod numeric;
pub mod provider;
pub mod redact;
pub mod supply;
pub mod validate;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::{Config, Provider, Secret};
use crate::db::etl_runs as runs;
use crate::db::prices::Counts;
use crate::domain::Symbol;
use client::{Client, RateLimit, RetryPolicy};
use runs::{Finish, Status};
use supply::{Plan, Source};

/// Which trading days to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dates {
    /// Every trading day since each symbol's last stored bar, within the look-back window
    /// (`ETL_LOOKBACK_DAYS`), up to the latest completed one, which is always asked (the cron
    /// default; see [`catchup`]).
    CatchUp,
    /// One day.
    Day(NaiveDate),
    /// A backfill, both ends included; an end after the latest completed day is brought back
    /// to it.
    Range(NaiveDate, NaiveDate),
}

/// What one run is asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    /// Which days.
    pub dates: Dates,
    /// These symbols instead of the tracked universe.
    pub symbols: Option<Vec<String>>,
    /// The provider asked first, instead of `ETL_PRIMARY_PROVIDER`.
    pub provider: Option<Provider>,
}

/// How the run behaves beyond the configuration: what "now" is and how fast to retry (tests
/// shrink the backoff rather than sleep for seconds).
#[derive(Debug, Clone)]
pub struct Options {
    /// The current instant, which decides the latest completed trading day.
    pub now: DateTime<Utc>,
    /// Retries of one request.
    pub retry: RetryPolicy,
    /// One request's timeout.
    pub request_timeout: Duration,
    /// Symbols fetched at once.
    pub concurrency: usize,
}

impl Options {
    /// The configured behaviour, now.
    pub fn from_config(config: &Config) -> Self {
        Self {
            now: Utc::now(),
            retry: RetryPolicy::new(config.etl.max_retries),
            request_timeout: config.etl.request_timeout,
            concurrency: 4,
        }
    }
}

/// Why a run did not happen or could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum EtlError {
    /// The command line asks for something impossible (a day not closed yet, no trading day).
    #[error("{0}")]
    Usage(String),
    /// A setting the run needs is missing.
    #[error("{0}")]
    Config(String),
    /// Another run holds the single-writer lock.
    #[error("another ETL run holds the lock; this one exits without doing anything")]
    Locked,
    /// The tables are missing.
    #[error("the database has no ETL tables (etl_run, daily_prices, symbols, positions); run `sigmasight migrate` first")]
    NotMigrated,
    /// The database failed outside a batch (connecting, recording the run).
    #[error("the database failed: {0}")]
    Database(#[from] sqlx::Error),
}

/// How a run went: its record.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The `etl_run` id.
    pub run_id: i64,
    /// The first trading day covered.
    pub from: NaiveDate,
    /// The last trading day covered.
    pub to: NaiveDate,
    /// Symbols asked for.
    pub symbols_requested: usize,
    /// What was recorded.
    pub finish: Finish,
}

impl Outcome {
    /// How it ended.
    pub fn status(&self) -> Status {
        self.finish.status
    }

    /// The closing sentence.
    pub fn summary(&self) -> String {
        let f = &self.finish;
        let range = if self.from == self.to {
            self.from.to_string()
        } else {
            format!("{} to {}", self.from, self.to)
        };
        let mut text = format!(
            "etl run {} {}: {range}, {} of {} symbols supplied ({} failed), rows {} inserted, {} updated, {} unchanged, {} rejected; providers: {}",
            self.run_id,
            f.status.as_str(),
            f.symbols_succeeded,
            self.symbols_requested,
            f.symbols_failed,
            f.counts.inserted,
            f.counts.updated,
            f.counts.unchanged,
            f.rejected,
            if f.providers.is_empty() { "none".to_owned() } else { f.providers.join(", ") },
        );
        if let Some(summary) = &f.error_summary {
            text.push_str(". ");
            text.push_str(summary);
        }
        text
    }
}

/// Runs the ETL once: plan the days, take the lock, fetch, load, record. Returns when done, or
/// at the next batch boundary after `shutdown` resolves (recorded as cancelled).
pub async fn run<F>(
    config: &Config,
    request: Request,
    options: Options,
    shutdown: F,
) -> Result<Outcome, EtlError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (from, to) = plan_dates(request.dates, options.now)?;
    let catch_up = request.dates == Dates::CatchUp;
    let symbols = request.symbols.as_deref().map(normalise).transpose()?;
    let primary = request.provider.unwrap_or(config.etl.primary_provider);
    let deadline = Instant::now() + config.etl.deadline;
    let sources = sources(config, &options, primary, deadline)?;

    let plan = Plan {
        sources,
        from,
        to,
        days: calendar::trading_days(from, to).collect(),
        starts: HashMap::new(),
        today: calendar::new_york_date(options.now),
        deadline,
        concurrency: options.concurrency,
    };
    with_writer(config, |db| async move {
        locked(config, &db, plan, symbols, catch_up, shutdown).await
    })
    .await
}

/// Runs `work` holding the single-writer lock, with a pool for the loader's parallel writers and
/// the run record; closes the pool and releases the lock afterwards, whatever `work` returned.
/// [`EtlError::Locked`] when another run holds the lock.
pub(crate) async fn with_writer<T, W, Fut>(config: &Config, work: W) -> Result<T, EtlError>
where
    W: FnOnce(PgPool) -> Fut,
    Fut: Future<Output = Result<T, EtlError>>,
{
    let Some(lock) = runs::Lock::try_acquire(&config.database_url.connect_options()).await? else {
        return Err(EtlError::Locked);
    };
    let db = PgPoolOptions::new()
        // The parallel writers, and one for the run record.
        .max_connections(load::PARALLEL_WRITES as u32 + 1)
        .acquire_timeout(config.database_pool_timeout)
        .connect_with(config.database_url.connect_options())
        .await;
    let result = match db {
        Ok(db) => {
            let result = work(db.clone()).await;
            db.close().await;
            result
        }
        Err(error) => Err(error.into()),
    };
    lock.release().await;
    result
}

/// The part of a run that holds the lock.
async fn locked<F>(
    config: &Config,
    db: &PgPool,
    mut plan: Plan,
    symbols: Option<Vec<String>>,
    catch_up: bool,
    shutdown: F,
) -> Result<Outcome, EtlError>
where
    F: Future<Output = ()> + Send + 'static,
{
    if !runs::schema_ready(db).await? {
        return Err(EtlError::NotMigrated);
    }
    let abandoned = runs::mark_abandoned(db).await?;
    if !abandoned.is_empty() {
        let ids: Vec<String> = abandoned.iter().map(i64::to_string).collect();
        tracing::warn!(
            runs = ids.join(", "),
            "found ETL runs left running by a process that died; marked them abandoned"
        );
    }
    let symbols = match symbols {
        Some(symbols) => symbols,
        None => universe(db, &config.etl.benchmark_symbols).await?,
    };
    if catch_up {
        let lookback = config.etl.lookback_days;
        let since = catchup::window_start(plan.to, lookback);
        let last = catchup::last_stored(db, &symbols, since).await?;
        plan.starts = catchup::starts(&symbols, &last, plan.to, lookback);
        plan.from = plan.starts.values().min().copied().unwrap_or(plan.to);
        plan.days = calendar::trading_days(plan.from, plan.to).collect();
    }
    let names: Vec<&str> = plan.sources.iter().map(|s| s.provider().as_str()).collect();
    let run_id = runs::start(db, &names, plan.from, plan.to, symbols.len()).await?;
    tracing::info!(
        run_id,
        from = %plan.from,
        to = %plan.to,
        trading_days = plan.days.len() as u64,
        symbols = symbols.len() as u64,
        providers = names.join(", "),
        "etl run started"
    );

    let (cancel_tx, cancel) = watch::channel(false);
    let watcher = tokio::spawn(async move {
        shutdown.await;
        let _ = cancel_tx.send(true);
        // Keep the sender alive so receivers see `true`, not a closed channel.
        std::future::pending::<()>().await;
    });
    let requested = symbols.len();
    let (tx, rx) = mpsc::channel(8);
    let loader = tokio::spawn(load::consume(db.clone(), rx, config.etl.batch_size));
    let (from, to) = (plan.from, plan.to);
    let report = supply::supply(Arc::new(plan), symbols, tx, cancel).await;
    let loaded = loader.await;
    watcher.abort();

    let (counts, load_error) = match loaded {
        Ok(Ok(counts)) => (counts, None),
        Ok(Err(error)) => (Counts::default(), Some(error.to_string())),
        Err(error) => (Counts::default(), Some(error.to_string())),
    };
    let finish = conclude(report, counts, load_error, requested);
    runs::finish(db, run_id, &finish).await?;
    Ok(Outcome {
        run_id,
        from,
        to,
        symbols_requested: requested,
        finish,
    })
}

/// The status and the record of a run from what fetching and loading reported. Failures are
/// recorded in symbol order, not in the order concurrent fetches happened to end.
fn conclude(
    mut report: supply::Report,
    counts: Counts,
    load_error: Option<String>,
    requested: usize,
) -> Finish {
    report
        .failures
        .sort_by(|a, b| (&a.symbol, &a.provider).cmp(&(&b.symbol, &b.provider)));
    let succeeded = report.succeeded.len() as u64;
    let failed = report.failed.len() as u64;
    let (status, summary) = if let Some(error) = load_error {
        (
            Status::Failed,
            Some(format!(
                "Writing bars failed: {error}; earlier batches are committed."
            )),
        )
    } else if report.cancelled {
        (
            Status::Cancelled,
            Some(
                "Cancelled by a shutdown signal; every batch written before it is committed."
                    .to_owned(),
            ),
        )
    } else if requested > 0 && succeeded == 0 {
        (
            Status::Failed,
            Some(format!(
                "No symbol could be supplied{}.",
                first_error(&report)
            )),
        )
    } else if failed > 0 {
        (
            Status::Partial,
            Some(format!(
                "{failed} symbol(s) could not be supplied: {}{}.",
                report
                    .failed
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                first_error(&report)
            )),
        )
    } else {
        (Status::Succeeded, None)
    };
    Finish {
        status,
        providers: report.asked.iter().map(|p| p.as_str().to_owned()).collect(),
        symbols_succeeded: succeeded,
        symbols_failed: failed,
        counts,
        rejected: report.rejected,
        error_summary: summary,
        failures: report.failures,
    }
}

fn first_error(report: &supply::Report) -> String {
    report
        .failures
        .iter()
        .find(|f| !f.error.contains("rejected"))
        .map(|f| {
            format!(
                " (first error: {} at {}: {})",
                f.symbol, f.provider, f.error
            )
        })
        .unwrap_or_default()
}

/// The first and last trading day of a request at instant `now`.
pub fn plan_dates(dates: Dates, now: DateTime<Utc>) -> Result<(NaiveDate, NaiveDate), EtlError> {
    let latest = calendar::latest_completed_trading_day(now);
    let (from, to) = match dates {
        // Each symbol's first day comes from the database, once the run holds the lock.
        Dates::CatchUp => return Ok((latest, latest)),
        Dates::Day(day) => (day, day),
        Dates::Range(from, to) if from > to => {
            return Err(EtlError::Usage(format!("--from {from} is after --to {to}")))
        }
        Dates::Range(from, to) => (from, to.min(latest)),
    };
    if from > latest {
        return Err(EtlError::Usage(format!(
            "{from} has not closed yet in New York; the latest completed trading day is {latest}"
        )));
    }
    let mut days = calendar::trading_days(from, to);
    match (days.next(), calendar::trading_days(from, to).last()) {
        (Some(first), Some(last)) => Ok((first, last)),
        _ if from == to => Err(EtlError::Usage(format!(
            "{from} is not a trading day (a weekend or an exchange holiday has no bars)"
        ))),
        _ => Err(EtlError::Usage(format!(
            "there is no trading day from {from} to {to}"
        ))),
    }
}

/// Symbols from the command line, upper-cased and checked against the table's rule.
fn normalise(symbols: &[String]) -> Result<Vec<String>, EtlError> {
    let mut out: Vec<String> = symbols
        .iter()
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = out.iter().find(|s| !Symbol::is_valid(s)) {
        return Err(EtlError::Usage(format!(
            "--symbols: {bad:?} is not a symbol ({})",
            Symbol::SPELLING
        )));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The tracked universe: active rows of `symbols`, every symbol held in a position (a position
/// needs its price whether or not anyone tracks the symbol, and even if its row was
/// deactivated), and the benchmark symbols.
async fn universe(db: &PgPool, benchmarks: &[String]) -> Result<Vec<String>, sqlx::Error> {
    let mut symbols = crate::db::symbols::universe(db).await?;
    symbols.extend(benchmarks.iter().cloned());
    symbols.sort();
    symbols.dedup();
    Ok(symbols)
}

/// The providers to ask, primary first; a provider without a key is skipped, except that the
/// primary must have one.
fn sources(
    config: &Config,
    options: &Options,
    primary: Provider,
    deadline: Instant,
) -> Result<Vec<Source>, EtlError> {
    let http = reqwest::Client::builder()
        .user_agent(concat!("sigmasight-etl/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(options.request_timeout.min(Duration::from_secs(10)))
        .build()
        .map_err(|e| {
            EtlError::Config(format!("cannot build the HTTP client: {}", e.without_url()))
        })?;
    let etl = &config.etl;
    let source = |provider: Provider| -> Option<Source> {
        let client = |bearer: Option<Secret>, per_minute: u32| {
            Client::new(
                http.clone(),
                provider,
                bearer,
                RateLimit::per_minute(per_minute),
                options.retry,
                options.request_timeout,
                deadline,
            )
        };
        match provider {
            Provider::Fmp => etl.fmp_api_key.as_ref().map(|key| Source::Fmp {
                client: client(None, etl.fmp_requests_per_minute),
                base: etl.fmp_base_url.clone(),
                key: key.clone(),
            }),
            Provider::Polygon => etl.polygon_api_key.as_ref().map(|key| Source::Polygon {
                client: client(Some(key.clone()), etl.polygon_requests_per_minute),
                base: etl.polygon_base_url.clone(),
            }),
        }
    };
    let Some(first) = source(primary) else {
        let var = match primary {
            Provider::Fmp => "FMP_API_KEY",
            Provider::Polygon => "POLYGON_API_KEY",
        };
        return Err(EtlError::Config(format!(
            "{var}: required, because {} is the primary provider (ETL_PRIMARY_PROVIDER or --provider)",
            primary.as_str()
        )));
    };
    Ok(std::iter::once(first)
        .chain(source(primary.other()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    // Wednesday 2025-01-15, 12:00 New York: the latest completed day is the 14th.
    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 15, 17, 0, 0).unwrap()
    }

    #[test]
    fn a_range_is_trimmed_to_trading_days_and_to_the_latest_completed_day() {
        let (from, to) =
            plan_dates(Dates::Range(d("2025-01-04"), d("2025-01-31")), noon()).unwrap();
        assert_eq!((from, to), (d("2025-01-06"), d("2025-01-14")));
    }

    #[test]
    fn a_day_not_closed_yet_or_not_traded_is_refused() {
        let err = plan_dates(Dates::Day(d("2025-01-15")), noon()).unwrap_err();
        assert!(err.to_string().contains("has not closed yet"), "{err}");
        let err = plan_dates(Dates::Day(d("2025-01-09")), noon()).unwrap_err();
        assert!(err.to_string().contains("not a trading day"), "{err}");
    }

    #[test]
    fn no_provider_shows_its_key_in_debug_output() {
        let config = Config::from_figment(
            &crate::config::defaults()
                .merge(("database_url", "postgres://u@h/db"))
                .merge(("fmp_api_key", "fmp-key-5e0c1d"))
                .merge(("polygon_api_key", "polygon-key-7a42b9")),
        )
        .unwrap();
        let options = Options::from_config(&config);

        for primary in [Provider::Polygon, Provider::Fmp] {
            let sources = sources(&config, &options, primary, Instant::now()).unwrap();
            assert_eq!(sources.len(), 2);
            let text = format!("{sources:?}");
            assert!(
                !text.contains("polygon-key-7a42b9") && !text.contains("fmp-key-5e0c1d"),
                "{text}"
            );
            assert!(text.contains("Secret(****)"), "{text}");
        }
    }

    #[test]
    fn command_line_symbols_are_upper_cased_deduplicated_and_checked() {
        let symbols = normalise(&["aapl".into(), " SPY".into(), "AAPL".into()]).unwrap();
        assert_eq!(symbols, ["AAPL", "SPY"]);
        assert!(normalise(&["A B".into()]).is_err());
    }
}
