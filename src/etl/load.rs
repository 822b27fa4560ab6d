//! Writing bars: one statement per batch, its own transaction, that inserts new rows, updates
//! rows whose values changed, and leaves identical rows alone (their `updated_at` too), and
//! says how many of each.
//!
//! The batch travels as one array per column and is spread back into rows by `UNNEST`: one
//! round trip and one plan for thousands of rows, with no temporary table to manage.

use rust_decimal::Decimal;
use sqlx::PgPool;
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

// `xmax = 0` holds for a row this statement inserted, not for one it updated: the documented
// way to tell the two apart in `RETURNING` of an upsert. Rows the WHERE leaves alone are not
// returned at all, so they are the difference.
const UPSERT: &str = r#"
WITH written AS (
    INSERT INTO daily_prices AS d (symbol, date, open, high, low, close, adj_close, volume, source)
    SELECT * FROM UNNEST($1::text[], $2::date[], $3::numeric[], $4::numeric[], $5::numeric[],
                         $6::numeric[], $7::numeric[], $8::bigint[], $9::text[])
    ON CONFLICT (symbol, date) DO UPDATE
       SET open = excluded.open, high = excluded.high, low = excluded.low,
           close = excluded.close, adj_close = excluded.adj_close, volume = excluded.volume,
           source = excluded.source, updated_at = now()
     WHERE (d.open, d.high, d.low, d.close, d.adj_close, d.volume, d.source)
           IS DISTINCT FROM
           (excluded.open, excluded.high, excluded.low, excluded.close, excluded.adj_close,
            excluded.volume, excluded.source)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written
"#;

/// Upserts `bars`, each with its `daily_prices.source` (a provider's name, `csv`), in one
/// transaction. A (symbol, date) may appear
/// only once in `bars` (validation and the one-provider-per-symbol rule ensure it).
pub async fn upsert(db: &PgPool, bars: &[(Bar, Source)]) -> Result<Counts, sqlx::Error> {
    if bars.is_empty() {
        return Ok(Counts::default());
    }
    let n = bars.len();
    let mut symbols = Vec::with_capacity(n);
    let mut dates = Vec::with_capacity(n);
    let mut opens: Vec<Decimal> = Vec::with_capacity(n);
    let mut highs: Vec<Decimal> = Vec::with_capacity(n);
    let mut lows: Vec<Decimal> = Vec::with_capacity(n);
    let mut closes: Vec<Decimal> = Vec::with_capacity(n);
    let mut adj_closes: Vec<Option<Decimal>> = Vec::with_capacity(n);
    let mut volumes = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    for (bar, source) in bars {
        symbols.push(bar.symbol.as_str());
        dates.push(bar.date);
        opens.push(bar.open);
        highs.push(bar.high);
        lows.push(bar.low);
        closes.push(bar.close);
        adj_closes.push(bar.adj_close);
        volumes.push(bar.volume);
        sources.push(*source);
    }
    let (inserted, updated): (i64, i64) = sqlx::query_as(UPSERT)
        .bind(&symbols)
        .bind(&dates)
        .bind(&opens)
        .bind(&highs)
        .bind(&lows)
        .bind(&closes)
        .bind(&adj_closes)
        .bind(&volumes)
        .bind(&sources)
        .fetch_one(db)
        .await?;
    let inserted = u64::try_from(inserted).unwrap_or(0);
    let updated = u64::try_from(updated).unwrap_or(0);
    Ok(Counts {
        inserted,
        updated,
        unchanged: (n as u64).saturating_sub(inserted + updated),
    })
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

/// Batches written at once, each on its own connection. One Postgres backend spends 15-25 µs
/// a row on this upsert (heap, covering key, CHECKs); two keep both cores of a small host busy
/// (docs/benchmarks.md). More would only queue on the CPU.
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
