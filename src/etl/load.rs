//! Writing bars, a batch per transaction: new rows are inserted, rows whose values changed are
//! updated, identical rows are left alone (their `updated_at` too), and each is counted.
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
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgPool, Postgres, Row};
use tokio::task::JoinSet;

use super::validate::Bar;

/// Where a bar came from, as stored in `daily_prices.source`: a provider's name
/// ([`crate::config::Provider::as_str`]) or `csv`.
pub type Source = &'static str;

/// What a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// New (symbol, date) rows.
    pub inserted: u64,
    /// Existing rows whose values changed.
    pub updated: u64,
    /// Existing rows identical to the bar: not written.
    pub unchanged: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Self) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// A batch as one vector per column of `daily_prices`, for `UNNEST`.
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

    /// Binds the nine columns as `$1` to `$9`, in the table's order: symbol, date, open, high,
    /// low, close, adj_close, volume, source.
    pub fn bind<'q>(
        &'q self,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        query
            .bind(&self.symbols)
            .bind(&self.dates)
            .bind(&self.opens)
            .bind(&self.highs)
            .bind(&self.lows)
            .bind(&self.closes)
            .bind(&self.adj_closes)
            .bind(&self.volumes)
            .bind(&self.sources)
    }
}

/// The bars of a batch spread back into rows (`$1` to `$9` of [`Columns::bind`]).
macro_rules! incoming {
    () => {
        "UNNEST($1::text[], $2::date[], $3::numeric[], $4::numeric[], $5::numeric[], \
         $6::numeric[], $7::numeric[], $8::bigint[], $9::text[])"
    };
}

/// Whether the stored row `$stored` (NULLs when there is none) differs from the bar `$bar`.
macro_rules! differs {
    ($stored:literal, $bar:literal) => {
        concat!(
            "(",
            $stored,
            ".open, ",
            $stored,
            ".high, ",
            $stored,
            ".low, ",
            $stored,
            ".close, ",
            $stored,
            ".adj_close, ",
            $stored,
            ".volume, ",
            $stored,
            ".source) IS DISTINCT FROM (",
            $bar,
            ".open, ",
            $bar,
            ".high, ",
            $bar,
            ".low, ",
            $bar,
            ".close, ",
            $bar,
            ".adj_close, ",
            $bar,
            ".volume, ",
            $bar,
            ".source)"
        )
    };
}

/// The bars of a batch as rows, `$1` to `$9` of [`Columns::bind`], for statements built at run time.
pub const INCOMING: &str = incoming!();

// The positions (from 1) of the bars that differ from the stored row, and whether one is stored.
// `LATERAL ... LIMIT 1` keeps the lookup a probe of the primary key per bar, whatever the planner
// makes of the batch's size.
const PROBE: &str = concat!(
    "SELECT b.i, stored.open IS NOT NULL AS stored FROM ",
    incoming!(),
    " WITH ORDINALITY AS b(symbol, date, open, high, low, close, adj_close, volume, source, i)
     LEFT JOIN LATERAL (
         SELECT s.open, s.high, s.low, s.close, s.adj_close, s.volume, s.source
           FROM daily_prices s WHERE s.symbol = b.symbol AND s.date = b.date LIMIT 1
     ) stored ON true
     WHERE ",
    differs!("stored", "b")
);

const COPY: &str =
    "COPY daily_prices (symbol, date, open, high, low, close, adj_close, volume, source) \
                    FROM STDIN";

const UPDATE: &str = concat!(
    "WITH written AS (
         UPDATE daily_prices d
            SET open = b.open, high = b.high, low = b.low, close = b.close,
                adj_close = b.adj_close, volume = b.volume, source = b.source, updated_at = now()
           FROM ",
    incoming!(),
    " AS b(symbol, date, open, high, low, close, adj_close, volume, source)
          WHERE d.symbol = b.symbol AND d.date = b.date AND ",
    differs!("d", "b"),
    " RETURNING 1
     )
     SELECT count(*) FROM written"
);

// The whole batch in one statement, for a batch whose `COPY` met a row written since its probe.
// `xmax = 0` holds for a row this statement inserted, not for one it updated: the documented
// way to tell the two apart in `RETURNING` of an upsert. Rows the `WHERE` leaves alone are not
// returned, so they are the difference.
const UPSERT: &str = concat!(
    "WITH written AS (
         INSERT INTO daily_prices AS d (symbol, date, open, high, low, close, adj_close, volume, source)
         SELECT * FROM ",
    incoming!(),
    " ON CONFLICT (symbol, date) DO UPDATE
            SET open = excluded.open, high = excluded.high, low = excluded.low,
                close = excluded.close, adj_close = excluded.adj_close, volume = excluded.volume,
                source = excluded.source, updated_at = now()
          WHERE ",
    differs!("d", "excluded"),
    " RETURNING (xmax = 0) AS inserted
     )
     SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written"
);

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
        columns.bind(sqlx::query(PROBE)).fetch_all(&mut *tx).await?
    } else {
        Vec::new()
    };
    for row in differing {
        let position: i64 = row.try_get(0)?;
        let stored: bool = row.try_get(1)?;
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
        let mut copy = tx.copy_in_raw(COPY).await?;
        copy.send(copy_text(&new)).await?;
        copy.finish().await?
    };
    let updated = if changed.is_empty() {
        0
    } else {
        let changed = Columns::of(changed.into_iter());
        let n: i64 = changed
            .bind(sqlx::query(UPDATE))
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        u64::try_from(n).unwrap_or(0)
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
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM daily_prices
                         WHERE symbol = ANY($1) AND date BETWEEN $2 AND $3)",
    )
    .bind(&symbols)
    .bind(first)
    .bind(last)
    .fetch_one(tx)
    .await
}

async fn upsert_statement(db: &PgPool, bars: &[(Bar, Source)]) -> Result<Counts, sqlx::Error> {
    let columns = Columns::of(bars.iter().map(|(bar, source)| (bar, *source)));
    let row = columns.bind(sqlx::query(UPSERT)).fetch_one(db).await?;
    let inserted = u64::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0);
    let updated = u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0);
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

/// What the producer sends the loader.
#[derive(Debug)]
pub enum Message {
    /// Validated bars, each with the source that supplied it.
    Bars(Vec<(Bar, Source)>),
    /// Write what is buffered now: the producer is moving to another provider, which may send
    /// a (symbol, date) already buffered, and one statement cannot upsert the same row twice.
    Flush,
}

/// Batches written at once, each on its own connection: while one backend parses and checks a
/// batch's rows (`COPY`'s input, the CHECKs, the covering key), the other's waits on its WAL
/// flush; two keep both cores of a small host busy (docs/benchmarks.md). More would only queue
/// on the CPU.
pub const PARALLEL_WRITES: usize = 2;

/// Receives bars until the channel closes and writes them in batches of `batch_size`, up to
/// [`PARALLEL_WRITES`] at once; the totals. Memory holds at most the batches in flight plus one
/// being filled, whatever the run's size.
pub async fn consume(
    db: PgPool,
    mut messages: tokio::sync::mpsc::Receiver<Message>,
    batch_size: usize,
) -> Result<Counts, sqlx::Error> {
    let mut writer = Writer {
        db,
        in_flight: JoinSet::new(),
        totals: Counts::default(),
        batches: 0,
    };
    let mut buffer: Vec<(Bar, Source)> = Vec::with_capacity(batch_size);
    while let Some(message) = messages.recv().await {
        match message {
            Message::Bars(bars) => buffer.extend(bars),
            Message::Flush => {
                writer.start(std::mem::take(&mut buffer)).await?;
                // Every write must be committed before the next provider's bars are: two
                // statements holding the same rows in different orders could deadlock.
                writer.drain().await?;
            }
        }
        while buffer.len() >= batch_size {
            let rest = buffer.split_off(batch_size);
            writer.start(std::mem::replace(&mut buffer, rest)).await?;
        }
    }
    writer.start(buffer).await?;
    writer.drain().await?;
    Ok(writer.totals)
}

/// The batches being written.
struct Writer {
    db: PgPool,
    in_flight: JoinSet<Result<(usize, Counts), sqlx::Error>>,
    totals: Counts,
    batches: u64,
}

impl Writer {
    /// Starts writing `batch`, first waiting for a free slot.
    async fn start(&mut self, batch: Vec<(Bar, Source)>) -> Result<(), sqlx::Error> {
        if batch.is_empty() {
            return Ok(());
        }
        while self.in_flight.len() >= PARALLEL_WRITES {
            self.finish_one().await?;
        }
        let db = self.db.clone();
        self.in_flight
            .spawn(async move { Ok((batch.len(), upsert(&db, &batch).await?)) });
        Ok(())
    }

    /// Waits for every write in flight.
    async fn drain(&mut self) -> Result<(), sqlx::Error> {
        while !self.in_flight.is_empty() {
            self.finish_one().await?;
        }
        Ok(())
    }

    async fn finish_one(&mut self) -> Result<(), sqlx::Error> {
        let Some(joined) = self.in_flight.join_next().await else {
            return Ok(());
        };
        let (rows, counts) = joined.map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))??;
        self.totals += counts;
        self.batches += 1;
        tracing::info!(
            batch = self.batches,
            rows = rows as u64,
            inserted = counts.inserted,
            updated = counts.updated,
            unchanged = counts.unchanged,
            "batch committed"
        );
        Ok(())
    }
}
