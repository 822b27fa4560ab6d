//! The ETL's run record (`etl_run`) and its single-writer lock.
//!
//! The lock is a session-level advisory lock taken with `pg_try_advisory_lock` on a connection
//! of its own, held for the whole run: a second run started meanwhile gets `false` at once and
//! exits without writing anything. If the process dies, Postgres ends the session and the lock
//! goes with it, so a crash never leaves the ETL locked out; the row it left `running` is marked
//! `abandoned` by the next run, which, holding the lock, knows that no other run is alive.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::types::Json;
use sqlx::{Connection, PgConnection, PgPool};

use super::prices::Counts;

/// The advisory lock key: "SSETL" in ASCII, a constant no other part of the system uses (sqlx's
/// migrator derives its own from the database name).
pub const LOCK_KEY: i64 = 0x53_53_45_54_4C;

/// The single-writer lock, held as long as this value lives (dropping it closes the session).
pub struct Lock {
    conn: PgConnection,
}

impl Lock {
    /// Takes the lock if it is free; `None` if another run holds it.
    pub async fn try_acquire(options: &PgConnectOptions) -> Result<Option<Self>, sqlx::Error> {
        let mut conn = PgConnection::connect_with(options).await?;
        let taken = sqlx::query_scalar!(r#"SELECT pg_try_advisory_lock($1) AS "taken!""#, LOCK_KEY)
            .fetch_one(&mut conn)
            .await?;
        if taken {
            Ok(Some(Self { conn }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Releases the lock and closes its connection.
    pub async fn release(mut self) {
        let _ = sqlx::query!("SELECT pg_advisory_unlock($1)", LOCK_KEY)
            .fetch_one(&mut self.conn)
            .await;
        let _ = self.conn.close().await;
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every symbol was supplied.
    Succeeded,
    /// Some symbols were supplied, some not.
    Partial,
    /// Nothing useful was done (no symbol supplied, or the database failed).
    Failed,
    /// Stopped by SIGTERM or SIGINT at a batch boundary.
    Cancelled,
}

impl Status {
    /// The value stored in `etl_run.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One per-symbol problem, as stored in `etl_run.failures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The symbol (`*` for a problem with a whole grouped day).
    pub symbol: String,
    /// The provider asked.
    pub provider: String,
    /// What went wrong, in one sentence (never a URL or a key).
    pub error: String,
}

/// What a finished run records.
#[derive(Debug, Clone)]
pub struct Finish {
    /// How it ended.
    pub status: Status,
    /// Providers asked, in order.
    pub providers: Vec<String>,
    /// Symbols supplied.
    pub symbols_succeeded: u64,
    /// Symbols no provider could supply.
    pub symbols_failed: u64,
    /// Rows written and left alone.
    pub counts: Counts,
    /// Bars refused by validation.
    pub rejected: u64,
    /// One sentence, for people.
    pub error_summary: Option<String>,
    /// Per-symbol problems (capped: see [`MAX_FAILURES`]).
    pub failures: Vec<Failure>,
}

/// At most this many failures are stored per run: a backfill refused by a provider would
/// otherwise store one entry per symbol per provider. The count columns stay exact.
pub const MAX_FAILURES: usize = 1000;

/// Whether the ETL's tables exist (the ETL never migrates).
pub async fn schema_ready(db: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT to_regclass('etl_run') IS NOT NULL
              AND to_regclass('daily_prices') IS NOT NULL
              AND to_regclass('symbols') IS NOT NULL
              AND to_regclass('positions') IS NOT NULL AS "ready!""#,
    )
    .fetch_one(db)
    .await
}

/// Marks every run left `running` as `abandoned`; their ids. Call only while holding the lock.
pub async fn mark_abandoned(db: &PgPool) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        "UPDATE etl_run
            SET status = 'abandoned',
                finished_at = greatest(now(), started_at),
                error_summary = coalesce(error_summary || ' ', '') ||
                    'The process ended without recording an outcome (killed or crashed); marked by the next run.'
          WHERE status = 'running'
      RETURNING id",
    )
    .fetch_all(db)
    .await
}

/// Records a run as started; its id.
pub async fn start(
    db: &PgPool,
    providers: &[&str],
    from: NaiveDate,
    to: NaiveDate,
    symbols_requested: usize,
) -> Result<i64, sqlx::Error> {
    let providers: Vec<String> = providers.iter().map(|p| (*p).to_owned()).collect();
    sqlx::query_scalar!(
        "INSERT INTO etl_run (providers, date_from, date_to, symbols_requested)
         VALUES ($1, $2, $3, $4) RETURNING id",
        &providers,
        from,
        to,
        i32::try_from(symbols_requested).unwrap_or(i32::MAX),
    )
    .fetch_one(db)
    .await
}

/// Records a run whose days and symbols are known only at its end (a CSV import: they are in
/// the file) as started; its id. [`scope`] fills them in.
pub async fn start_unscoped(db: &PgPool, providers: &[&str]) -> Result<i64, sqlx::Error> {
    let providers: Vec<String> = providers.iter().map(|p| (*p).to_owned()).collect();
    sqlx::query_scalar!(
        "INSERT INTO etl_run (providers) VALUES ($1) RETURNING id",
        &providers,
    )
    .fetch_one(db)
    .await
}

/// Records the days (`None` if no bar was loaded) and the number of symbols run `id` covered.
pub async fn scope(
    db: &PgPool,
    id: i64,
    days: Option<(NaiveDate, NaiveDate)>,
    symbols_requested: usize,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE etl_run SET date_from = $2, date_to = $3, symbols_requested = $4 WHERE id = $1",
        id,
        days.map(|d| d.0),
        days.map(|d| d.1),
        i32::try_from(symbols_requested).unwrap_or(i32::MAX),
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Records how run `id` ended.
pub async fn finish(db: &PgPool, id: i64, finish: &Finish) -> Result<(), sqlx::Error> {
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let as_i32 = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
    sqlx::query!(
        "UPDATE etl_run
            SET finished_at = greatest(now(), started_at), status = $2, providers = $3,
                symbols_succeeded = $4, symbols_failed = $5,
                rows_inserted = $6, rows_updated = $7, rows_unchanged = $8, rows_rejected = $9,
                error_summary = $10, failures = $11
          WHERE id = $1",
        id,
        finish.status.as_str(),
        &finish.providers,
        as_i32(finish.symbols_succeeded),
        as_i32(finish.symbols_failed),
        as_i64(finish.counts.inserted),
        as_i64(finish.counts.updated),
        as_i64(finish.counts.unchanged),
        as_i64(finish.rejected),
        finish.error_summary.as_deref(),
        // Checked by the column's CHECK (an array), not by the macro: any serializable value binds.
        Json(&finish.failures[..finish.failures.len().min(MAX_FAILURES)]) as _,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A run as the API lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RunRow {
    /// The run's id.
    pub id: i64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended (`None` while running).
    pub finished_at: Option<DateTime<Utc>>,
    /// running, succeeded, partial, failed, cancelled or abandoned.
    pub status: String,
    /// Providers asked, in order.
    pub providers: Vec<String>,
    /// First trading day covered.
    pub date_from: Option<NaiveDate>,
    /// Last trading day covered.
    pub date_to: Option<NaiveDate>,
    /// Symbols asked for.
    pub symbols_requested: i32,
    /// Symbols supplied.
    pub symbols_succeeded: i32,
    /// Symbols not supplied.
    pub symbols_failed: i32,
    /// New rows.
    pub rows_inserted: i64,
    /// Changed rows.
    pub rows_updated: i64,
    /// Rows left alone.
    pub rows_unchanged: i64,
    /// Bars refused by validation.
    pub rows_rejected: i64,
    /// One sentence for people.
    pub error_summary: Option<String>,
    /// Per-symbol problems.
    #[schema(value_type = Vec<Object>)]
    pub failures: Json<serde_json::Value>,
}

/// The `limit` most recent runs, newest first.
pub async fn recent(db: &PgPool, limit: i64) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as!(
        RunRow,
        r#"SELECT id, started_at, finished_at, status, providers, date_from, date_to,
                  symbols_requested, symbols_succeeded, symbols_failed, rows_inserted,
                  rows_updated, rows_unchanged, rows_rejected, error_summary,
                  failures AS "failures: Json<serde_json::Value>"
             FROM etl_run ORDER BY started_at DESC, id DESC LIMIT $1"#,
        limit,
    )
    .fetch_all(db)
    .await
}

/// The latest run (by start), as the metrics scrape reads it: times as Unix seconds.
#[derive(Debug)]
pub struct LatestRun {
    /// running, succeeded, partial, failed, cancelled or abandoned.
    pub status: String,
    /// When it started.
    pub started_at: f64,
    /// How long it took; `None` while running.
    pub duration_seconds: Option<f64>,
    /// New rows.
    pub rows_inserted: i64,
    /// Changed rows.
    pub rows_updated: i64,
    /// Rows left alone.
    pub rows_unchanged: i64,
    /// Bars refused by validation.
    pub rows_rejected: i64,
}

/// The latest run (by start), if there is one.
pub async fn latest_summary(db: &PgPool) -> Result<Option<LatestRun>, sqlx::Error> {
    sqlx::query_as!(
        LatestRun,
        r#"SELECT status,
                  extract(epoch FROM started_at)::float8 AS "started_at!",
                  extract(epoch FROM finished_at - started_at)::float8 AS duration_seconds,
                  rows_inserted, rows_updated, rows_unchanged, rows_rejected
             FROM etl_run ORDER BY started_at DESC, id DESC LIMIT 1"#
    )
    .fetch_optional(db)
    .await
}
