//! The ETL's loader: bars arrive from the producer over a channel and are written in batches,
//! a few at once, by [`crate::db::prices::write::upsert`].

use sqlx::PgPool;
use tokio::task::JoinSet;

use super::validate::Bar;
use crate::db::prices::write::{upsert, Source};
use crate::db::prices::Counts;

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
