//! Writing bars to `daily_prices` (the ETL's loader, the demo seed), a batch per transaction:
//! new rows are inserted, rows whose values changed are updated, identical rows are left alone (their `updated_at` too), and each is counted.
//!
//! A batch first asks whether anything is stored for its symbols and dates at all (one range
//! scan per symbol); when something is, which of its bars differ from what is stored (one
//! statement: the batch travels as one array per column, spread back into rows by `UNNEST`,
//! each bar probed through the primary key). The new bars then go in by `COPY`, the changed ones by one `UPDATE`, and the
//! unchanged ones cost the probe alone. `COPY` writes a page of rows per WAL record where
//! `INSERT ... ON CONFLICT` writes one per row and marks each speculatively: on a durable server
//! that was most of a backfill's time (docs/benchmarks.md). A row that appears between the probe
//! and the `COPY` (the single-writer lock keeps the ETL's runs apart, not `seed --demo`) fails the
//! `COPY` on the primary key; the batch is then written again by one upsert statement.

use std::fmt::Write as _;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgPool;

use super::Counts;
use crate::domain::Bar;

/// Where a bar came from, as stored in `daily_prices.source`: a provider's name
/// ([`crate::config::Provider::as_str`]) or `csv`.
pub type Source = &'static str;

/// A batch as one vector per column of `daily_prices`, for `UNNEST`. The statements cast each
/// parameter (`$1::text[]`, ...), which fixes its type on the server; the vectors of borrowed
/// text and of optional decimals are bound `as _` because the macros' Rust-side check knows
/// only `Vec<String>` and `Vec<Decimal>` for those arrays.
pub struct Columns<'a> {
    symbols: Vec<&'a str>,
    dates: Vec<NaiveDate>,
    opens: Vec<Decimal>,
    highs: Vec<Decimal>,
    lows: Vec<Decimal>,
    closes: Vec<Decimal>,
    adj_closes: Vec<Option<Decimal>>,
    volumes: Vec<i64>,
    sources: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    /// The columns of `bars`, each with its source.
    pub fn of(bars: impl ExactSizeIterator<Item = (&'a Bar, Source)>) -> Self {
        let n = bars.len();
        let mut columns = Columns {
            symbols: Vec::with_capacity(n),
            dates: Vec::with_capacity(n),
            opens: Vec::with_capacity(n),
            highs: Vec::with_capacity(n),
            lows: Vec::with_capacity(n),
            closes: Vec::with_capacity(n),
            adj_closes: Vec::with_capacity(n),
            volumes: Vec::with_capacity(n),
            sources: Vec::with_capacity(n),
        };
        for (bar, source) in bars {
            columns.symbols.push(bar.symbol.as_str());
            columns.dates.push(bar.date);
            columns.opens.push(bar.open);
            columns.highs.push(bar.high);
            columns.lows.push(bar.low);
            columns.closes.push(bar.close);
            columns.adj_closes.push(bar.adj_close);
            columns.volumes.push(bar.volume);
            columns.sources.push(source);
        }
        columns
    }
}

/// Writes `bars`, each with its `daily_prices.source` (a provider's name, `csv`), in one
/// transaction. A (symbol, date) may appear only once in `bars` (validation and the
/// one-provider-per-symbol rule ensure it).
pub async fn upsert(db: &PgPool, bars: &[(Bar, Source)]) -> Result<Counts, sqlx::Error> {
    if bars.is_empty() {
        return Ok(Counts::default());
    }
    match probe_copy_update(db, bars).await {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            tracing::info!(
                rows = bars.len() as u64,
                "a bar was stored since the batch's probe: the batch is written by one upsert"
            );
            upsert_statement(db, bars).await
        }
        written => written,
    }
}

async fn probe_copy_update(db: &PgPool, bars: &[(Bar, Source)]) -> Result<Counts, sqlx::Error> {
    let mut tx = db.begin().await?;
    let (mut new, mut changed) = (Vec::new(), Vec::new());
    if !any_stored(&mut tx, bars).await? {
        // A backfill's usual batch: nothing to compare with, every bar is new.
        new.extend(bars.iter().map(|(bar, source)| (bar, *source)));
    }
    let differing = if new.is_empty() {
        let columns = Columns::of(bars.iter().map(|(bar, source)| (bar, *source)));
        probe(&mut tx, &columns).await?
    } else {
        Vec::new()
    };
    for (position, stored) in differing {
        let Some((bar, source)) = usize::try_from(position - 1).ok().and_then(|i| bars.get(i))
        else {
            return Err(sqlx::Error::Protocol(format!(
                "the probe returned position {position} of a batch of {}",
                bars.len()
            )));
        };
        if stored {
            changed.push((bar, *source));
        } else {
            new.push((bar, *source));
        }
    }
    let inserted = if new.is_empty() {
        0
    } else {
        // COPY is not a statement the macros can check (it describes no columns); the table
        // and its columns are the ones the checked statements here name.
        let mut copy = tx
            .copy_in_raw(
                "COPY daily_prices (symbol, date, open, high, low, close, adj_close, volume, source) \
                 FROM STDIN",
            )
            .await?;
        copy.send(copy_text(&new)).await?;
        copy.finish().await?
    };
    let updated = if changed.is_empty() {
        0
    } else {
        let changed = Columns::of(changed.into_iter());
        update(&mut tx, &changed).await?
    };
    tx.commit().await?;
    Ok(Counts {
        inserted,
        updated,
        unchanged: (bars.len() as u64).saturating_sub(inserted + updated),
    })
}

/// Whether any row is stored for the symbols of `bars` between their first and last date: one
/// range scan of the primary key per symbol, where the probe looks up every bar.
async fn any_stored(
    tx: &mut sqlx::PgConnection,
    bars: &[(Bar, Source)],
) -> Result<bool, sqlx::Error> {
    let mut symbols: Vec<&str> = bars.iter().map(|(bar, _)| bar.symbol.as_str()).collect();
    symbols.sort_unstable();
    symbols.dedup();
    let dates = bars.iter().map(|(bar, _)| bar.date);
    let (Some(first), Some(last)) = (dates.clone().min(), dates.max()) else {
        return Ok(false);
    };
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM daily_prices
                           WHERE symbol = ANY($1) AND date BETWEEN $2 AND $3) AS "any!""#,
        &symbols as _,
        first,
        last,
    )
    .fetch_one(tx)
    .await
}

async fn upsert_statement(db: &PgPool, bars: &[(Bar, Source)]) -> Result<Counts, sqlx::Error> {
    let columns = Columns::of(bars.iter().map(|(bar, source)| (bar, *source)));
    // `xmax = 0` holds for a row this statement inserted, not for one it updated: the documented
    // way to tell the two apart in `RETURNING` of an upsert. Rows the `WHERE` leaves alone are
    // not returned, so they are the difference.
    let row = sqlx::query!(
        r#"WITH written AS (
             INSERT INTO daily_prices AS d
                    (symbol, date, open, high, low, close, adj_close, volume, source)
             SELECT * FROM UNNEST($1::text[], $2::date[], $3::numeric[], $4::numeric[], $5::numeric[],
                    $6::numeric[], $7::numeric[], $8::bigint[], $9::text[])
             ON CONFLICT (symbol, date) DO UPDATE
                SET open = excluded.open, high = excluded.high, low = excluded.low,
                    close = excluded.close, adj_close = excluded.adj_close,
                    volume = excluded.volume, source = excluded.source, updated_at = now()
              WHERE (d.open, d.high, d.low, d.close, d.adj_close, d.volume, d.source)
                    IS DISTINCT FROM (excluded.open, excluded.high, excluded.low, excluded.close,
                                      excluded.adj_close, excluded.volume, excluded.source)
             RETURNING (xmax = 0) AS inserted
           )
           SELECT count(*) FILTER (WHERE inserted) AS "inserted!",
                  count(*) FILTER (WHERE NOT inserted) AS "updated!"
             FROM written"#,
        &columns.symbols as _,
        &columns.dates,
        &columns.opens,
        &columns.highs,
        &columns.lows,
        &columns.closes,
        &columns.adj_closes as _,
        &columns.volumes,
        &columns.sources as _,
    )
    .fetch_one(db)
    .await?;
    let inserted = u64::try_from(row.inserted).unwrap_or(0);
    let updated = u64::try_from(row.updated).unwrap_or(0);
    let n = columns.symbols.len() as u64;
    Ok(Counts {
        inserted,
        updated,
        unchanged: n.saturating_sub(inserted + updated),
    })
}

/// `bars` in `COPY`'s text format: tab-separated columns, `\N` for NULL.
fn copy_text(bars: &[(&Bar, Source)]) -> Vec<u8> {
    let mut text = String::with_capacity(bars.len() * 80);
    for (bar, source) in bars {
        push_field(&mut text, &bar.symbol);
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "\t{}\t{}\t{}\t{}\t{}\t",
            bar.date, bar.open, bar.high, bar.low, bar.close
        );
        match bar.adj_close {
            Some(adj_close) => {
                let _ = write!(text, "{adj_close}");
            }
            None => text.push_str("\\N"),
        }
        let _ = write!(text, "\t{}\t", bar.volume);
        push_field(&mut text, source);
        text.push('\n');
    }
    text.into_bytes()
}

/// A text value escaped for `COPY`: the spelling rules keep these characters out of symbols and
/// sources, and this keeps a broken rule from becoming a broken row.
fn push_field(text: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => text.push_str("\\\\"),
            '\t' => text.push_str("\\t"),
            '\n' => text.push_str("\\n"),
            '\r' => text.push_str("\\r"),
            c => text.push(c),
        }
    }
}

// The positions (from 1) of the bars that differ from the stored row, and whether one is
// stored. `LATERAL ... LIMIT 1` keeps the lookup a probe of the primary key per bar, whatever the
// planner makes of the batch's size.
async fn probe(
    tx: &mut sqlx::PgConnection,
    columns: &Columns<'_>,
) -> Result<Vec<(i64, bool)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT b.i AS "i!", stored.open IS NOT NULL AS "stored!"
             FROM UNNEST($1::text[], $2::date[], $3::numeric[], $4::numeric[], $5::numeric[],
                    $6::numeric[], $7::numeric[], $8::bigint[], $9::text[])
                  WITH ORDINALITY AS b(symbol, date, open, high, low, close, adj_close, volume, source, i)
             LEFT JOIN LATERAL (
                 SELECT s.open, s.high, s.low, s.close, s.adj_close, s.volume, s.source
                   FROM daily_prices s WHERE s.symbol = b.symbol AND s.date = b.date LIMIT 1
             ) stored ON true
            WHERE (stored.open, stored.high, stored.low, stored.close, stored.adj_close, stored.volume, stored.source)
                 IS DISTINCT FROM (b.open, b.high, b.low, b.close, b.adj_close, b.volume, b.source)"#,
        &columns.symbols as _,
        &columns.dates,
        &columns.opens,
        &columns.highs,
        &columns.lows,
        &columns.closes,
        &columns.adj_closes as _,
        &columns.volumes,
        &columns.sources as _,
    )
    .fetch_all(tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.i, r.stored)).collect())
}

/// Rewrites the stored rows of `columns` whose values differ; how many.
async fn update(tx: &mut sqlx::PgConnection, columns: &Columns<'_>) -> Result<u64, sqlx::Error> {
    let n = sqlx::query_scalar!(
        r#"WITH written AS (
             UPDATE daily_prices d
                SET open = b.open, high = b.high, low = b.low, close = b.close,
                    adj_close = b.adj_close, volume = b.volume, source = b.source,
                    updated_at = now()
               FROM UNNEST($1::text[], $2::date[], $3::numeric[], $4::numeric[], $5::numeric[],
                    $6::numeric[], $7::numeric[], $8::bigint[], $9::text[])
                    AS b(symbol, date, open, high, low, close, adj_close, volume, source)
              WHERE d.symbol = b.symbol AND d.date = b.date
                AND (d.open, d.high, d.low, d.close, d.adj_close, d.volume, d.source)
                    IS DISTINCT FROM (b.open, b.high, b.low, b.close, b.adj_close, b.volume, b.source)
             RETURNING 1
           )
           SELECT count(*) AS "n!" FROM written"#,
        &columns.symbols as _,
        &columns.dates,
        &columns.opens,
        &columns.highs,
        &columns.lows,
        &columns.closes,
        &columns.adj_closes as _,
        &columns.volumes,
        &columns.sources as _,
    )
    .fetch_one(tx)
    .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Inserts the bars of `columns` where no bar is stored for their (symbol, date), leaving every
/// stored one as it is (the demo seed); how many were inserted.
pub async fn insert_missing(db: &PgPool, columns: &Columns<'_>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "INSERT INTO daily_prices (symbol, date, open, high, low, close, adj_close, volume, source)
         SELECT * FROM UNNEST($1::text[], $2::date[], $3::numeric[], $4::numeric[], $5::numeric[],
                    $6::numeric[], $7::numeric[], $8::bigint[], $9::text[])
         ON CONFLICT (symbol, date) DO NOTHING",
        &columns.symbols as _,
        &columns.dates,
        &columns.opens,
        &columns.highs,
        &columns.lows,
        &columns.closes,
        &columns.adj_closes as _,
        &columns.volumes,
        &columns.sources as _,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
