//! CSV import (`sigmasight etl --provider csv --file PATH|-`): bars from a file or standard
//! input through the same validation, loader, lock and `etl_run` record as a provider's, with
//! `source = 'csv'`.
//!
//! Two layouts, told apart by the header (names matched whatever their case, spaces and
//! underscores): the long one, `symbol,date,open,high,low,close,[adj close],volume`, and the
//! per-symbol one exported by most vendors, `Date,Open,High,Low,Close,Adj Close,Volume`, whose
//! symbol is given with `--symbols X`. A gzip file (or stream) is recognised by its first two
//! bytes.
//!
//! The file is streamed: one reused record, bars handed to the loader in chunks, so memory holds
//! the batches in flight whatever the file's size. A row the validation refuses is reported with
//! its line number and reason, counted as rejected, and the rest loads; the run is then
//! `partial`. A (symbol, date) seen earlier in the file is refused too (one bit per symbol and
//! day remembers what was seen), so one statement never upserts a row twice.

use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use tokio::sync::{mpsc, oneshot};

use super::load::{self, Message};
use super::validate::{self, Bar, Prices};
use super::{calendar, EtlError, Outcome};
use crate::config::Config;
use crate::db::etl_runs::{self as runs, Failure, Finish, Status};
use crate::db::prices::write::Source;
use crate::db::prices::Counts;
use crate::domain::Symbol;

/// The `daily_prices.source` and `etl_run.providers` value of imported bars.
pub const SOURCE: &str = "csv";

/// Bars handed to the loader at once.
const CHUNK: usize = 1024;

/// Rejected rows written to the log one by one; the rest are counted (and the first
/// [`runs::MAX_FAILURES`] recorded in `etl_run.failures`).
const LOGGED_REJECTS: u64 = 100;

/// How often a progress line is logged when there is no progress bar.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Where the rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input (`--file -`).
    Stdin,
    /// A file.
    Path(PathBuf),
}

impl Input {
    /// `-` is standard input; anything else a path.
    pub fn parse(text: &str) -> Self {
        if text == "-" {
            Self::Stdin
        } else {
            Self::Path(PathBuf::from(text))
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Stdin => "standard input".to_owned(),
            Self::Path(path) => format!("{:?}", path.display().to_string()),
        }
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A progress bar on standard error (rows, rows/s, ETA): a terminal.
    Bar,
    /// A log line every [`PROGRESS_EVERY`] and one when the file is read.
    Log,
}

/// What one import is asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    /// The file.
    pub input: Input,
    /// `--symbols`: the one symbol of a per-symbol file.
    pub symbols: Option<Vec<String>>,
    /// How progress is shown.
    pub progress: ProgressMode,
}

/// Which column holds what.
#[derive(Debug, Default, Clone, Copy)]
struct Columns {
    symbol: Option<usize>,
    date: usize,
    open: usize,
    high: usize,
    low: usize,
    close: usize,
    adj_close: Option<usize>,
    volume: usize,
}

/// The columns a header may name, by their name without case, spaces, underscores or dashes.
const NAMES: &[(&str, &str)] = &[
    ("symbol", "symbol"),
    ("date", "date"),
    ("open", "open"),
    ("high", "high"),
    ("low", "low"),
    ("close", "close"),
    ("adjclose", "adj close"),
    ("volume", "volume"),
];

fn usage(message: String) -> EtlError {
    EtlError::Usage(message)
}

impl Columns {
    /// Reads the header; `symbol` is `--symbols`, required exactly when there is no symbol
    /// column.
    fn from_header(
        header: &csv::ByteRecord,
        symbols: Option<&[String]>,
    ) -> Result<(Self, Option<String>), EtlError> {
        let mut found: HashMap<&'static str, usize> = HashMap::new();
        for (i, field) in header.iter().enumerate() {
            let name = String::from_utf8_lossy(field);
            let key: String = name
                .trim_start_matches('\u{feff}')
                .chars()
                .filter(|c| !matches!(c, ' ' | '_' | '-'))
                .flat_map(char::to_lowercase)
                .collect();
            let Some((_, canonical)) = NAMES.iter().find(|(k, _)| *k == key) else {
                return Err(usage(format!(
                    "--file: unknown column {name:?} in the header (column {}); expected symbol \
                     (long layout only), date, open, high, low, close, adj close (optional) and \
                     volume, in any order and case",
                    i + 1
                )));
            };
            if found.insert(canonical, i).is_some() {
                return Err(usage(format!(
                    "--file: the header names the column {canonical:?} twice"
                )));
            }
        }
        let required = |name: &str| -> Result<usize, EtlError> {
            found.get(name).copied().ok_or_else(|| {
                usage(format!(
                    "--file: the header has no {name:?} column (it reads {:?})",
                    String::from_utf8_lossy(header.as_slice())
                ))
            })
        };
        let columns = Self {
            symbol: found.get("symbol").copied(),
            date: required("date")?,
            open: required("open")?,
            high: required("high")?,
            low: required("low")?,
            close: required("close")?,
            adj_close: found.get("adj close").copied(),
            volume: required("volume")?,
        };
        let symbol =
            match (columns.symbol, symbols) {
                (Some(_), None) => None,
                (Some(_), Some(_)) => return Err(usage(
                    "--symbols: the file has a symbol column (the long layout), which names each \
                     row's symbol; leave --symbols out"
                        .to_owned(),
                )),
                (None, None) => {
                    return Err(usage(
                        "--symbols: required for a file without a symbol column (the per-symbol \
                     layout Date,Open,High,Low,Close,Adj Close,Volume): name its symbol with \
                     --symbols X"
                            .to_owned(),
                    ))
                }
                (None, Some([one])) => {
                    let one = one.trim().to_ascii_uppercase();
                    if !Symbol::is_valid(&one) {
                        return Err(usage(format!(
                            "--symbols: {one:?} is not a symbol ({})",
                            Symbol::SPELLING
                        )));
                    }
                    Some(one)
                }
                (None, Some(many)) => {
                    return Err(usage(format!(
                        "--symbols: a per-symbol file takes exactly one symbol, got {}",
                        many.len()
                    )))
                }
            };
        Ok((columns, symbol))
    }
}

/// Counts the bytes read through it (the compressed ones for a gzip file): the progress bar's
/// position against the file's size.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An opened input: the CSV reader past its header, and what the header said.
struct Opened {
    reader: csv::Reader<Box<dyn Read + Send>>,
    columns: Columns,
    symbol: Option<String>,
    bytes_read: Arc<AtomicU64>,
    size: Option<u64>,
}

/// Opens the input, decompressing it if it starts with gzip's magic bytes, and reads the header.
fn open(request: &Request) -> Result<Opened, EtlError> {
    let unreadable = |e: io::Error| {
        usage(format!(
            "--file: cannot read {}: {e}",
            request.input.describe()
        ))
    };
    let bytes_read = Arc::new(AtomicU64::new(0));
    let (raw, size): (Box<dyn Read + Send>, Option<u64>) = match &request.input {
        Input::Stdin => (Box::new(io::stdin()), None),
        Input::Path(path) => {
            let file = File::open(path).map_err(unreadable)?;
            let metadata = file.metadata().map_err(unreadable)?;
            if metadata.is_dir() {
                return Err(usage(format!(
                    "--file: {} is a directory",
                    request.input.describe()
                )));
            }
            (Box::new(file), Some(metadata.len()).filter(|n| *n > 0))
        }
    };
    let mut counted = BufReader::with_capacity(
        256 * 1024,
        Counting {
            inner: raw,
            read: bytes_read.clone(),
        },
    );
    // The first two bytes decide; a pipe may deliver them one read at a time.
    let mut magic = Vec::with_capacity(2);
    while magic.len() < 2 {
        let mut byte = [0u8; 1];
        match counted.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => magic.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(unreadable(e)),
        }
    }
    let gzip = magic == [0x1f, 0x8b];
    let whole = io::Cursor::new(magic).chain(counted);
    let decoded: Box<dyn Read + Send> = if gzip {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::read::MultiGzDecoder::new(whole),
        ))
    } else {
        Box::new(whole)
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .buffer_capacity(256 * 1024)
        .from_reader(decoded);
    let header = reader.byte_headers().map_err(|e| {
        usage(format!(
            "--file: cannot read the header of {}: {e}",
            request.input.describe()
        ))
    })?;
    if header.is_empty() || header.iter().all(<[u8]>::is_empty) {
        return Err(usage(format!(
            "--file: {} is empty; expected a header line first",
            request.input.describe()
        )));
    }
    let (columns, symbol) = Columns::from_header(header, request.symbols.as_deref())?;
    Ok(Opened {
        reader,
        columns,
        symbol,
        bytes_read,
        size,
    })
}

/// The days seen of one symbol: one bit per day from the first one seen (rounded down to 64),
/// so a repeated (symbol, date) is caught with memory per symbol and span, not per row.
#[derive(Debug, Default)]
struct Days {
    first: i64,
    bits: Vec<u64>,
}

impl Days {
    /// Records `day`; false if it was already recorded.
    fn insert(&mut self, day: NaiveDate) -> bool {
        let n = i64::from(day.num_days_from_ce());
        if self.bits.is_empty() {
            self.first = n.div_euclid(64) * 64;
        }
        if n < self.first {
            let words = usize::try_from((self.first - n + 63) / 64).unwrap_or(0);
            self.bits.splice(0..0, std::iter::repeat_n(0, words));
            self.first -= 64 * words as i64;
        }
        let offset = usize::try_from(n - self.first).unwrap_or(0);
        let (word, bit) = (offset / 64, offset % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let mask = 1u64 << bit;
        let fresh = self.bits[word] & mask == 0;
        self.bits[word] |= mask;
        fresh
    }
}

/// What was read of one symbol.
#[derive(Debug, Default)]
struct SymbolState {
    days: Days,
    loaded: u64,
}

/// What reading the file came to.
#[derive(Debug, Default)]
struct Reading {
    rows: u64,
    loaded: u64,
    rejected: u64,
    symbols: HashMap<Box<str>, SymbolState>,
    first_day: Option<NaiveDate>,
    last_day: Option<NaiveDate>,
    failures: Vec<Failure>,
    first_reject: Option<String>,
    /// Reading stopped early: the file could not be read past some line.
    error: Option<String>,
    cancelled: bool,
}

impl Reading {
    fn reject(&mut self, line: u64, symbol: &str, date: Option<NaiveDate>, reason: &str) {
        self.rejected += 1;
        let at = match date {
            Some(date) => format!("line {line} ({symbol} {date})"),
            None if symbol.is_empty() => format!("line {line}"),
            None => format!("line {line} ({symbol})"),
        };
        if self.rejected <= LOGGED_REJECTS {
            tracing::warn!(line, symbol, reason, "csv row rejected");
            if self.rejected == LOGGED_REJECTS {
                tracing::warn!(
                    "further rejected rows are counted, and recorded up to {}, but not logged",
                    runs::MAX_FAILURES
                );
            }
        }
        if self.first_reject.is_none() {
            self.first_reject = Some(format!("{at}: {reason}"));
        }
        if self.failures.len() < runs::MAX_FAILURES {
            self.failures.push(Failure {
                symbol: if symbol.is_empty() { "?" } else { symbol }.to_owned(),
                provider: SOURCE.to_owned(),
                error: format!("line {line}: {reason}"),
            });
        }
    }
}

/// Shows progress: a bar on a terminal, else a log line every [`PROGRESS_EVERY`].
struct Progress {
    /// Rows read so far, for whoever cannot wait for the reader's report.
    rows: Arc<AtomicU64>,
    mode: ProgressMode,
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_log: Instant,
    bytes_read: Arc<AtomicU64>,
    size: Option<u64>,
}

impl Progress {
    fn new(mode: ProgressMode, bytes_read: Arc<AtomicU64>, size: Option<u64>) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let (bar, template) = match size {
                Some(size) => (
                    indicatif::ProgressBar::new(size),
                    "{bar:30} {percent:>3}% {msg} ETA {eta}",
                ),
                None => (indicatif::ProgressBar::new_spinner(), "{spinner} {msg}"),
            };
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        });
        let now = Instant::now();
        Self {
            rows: Arc::new(AtomicU64::new(0)),
            mode,
            bar,
            started: now,
            last_log: now,
            bytes_read,
            size,
        }
    }

    fn rate(&self, rows: u64) -> u64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 {
            (rows as f64 / secs) as u64
        } else {
            0
        }
    }

    fn update(&mut self, rows: u64) {
        self.rows.store(rows, Ordering::Relaxed);
        let bytes = self.bytes_read.load(Ordering::Relaxed);
        match &self.bar {
            Some(bar) => {
                bar.set_position(bytes);
                bar.set_message(format!("{rows} rows, {} rows/s", self.rate(rows)));
            }
            None if self.last_log.elapsed() >= PROGRESS_EVERY => {
                self.last_log = Instant::now();
                self.log(rows, bytes);
            }
            None => {}
        }
    }

    fn log(&self, rows: u64, bytes: u64) {
        let percent = self.size.map(|size| bytes.min(size) * 100 / size.max(1));
        tracing::info!(
            rows,
            rows_per_second = self.rate(rows),
            bytes_read = bytes,
            percent,
            "csv import progress"
        );
    }

    fn finish(&self, rows: u64) {
        match &self.bar {
            Some(bar) => {
                bar.set_message(format!("{rows} rows, {} rows/s", self.rate(rows)));
                bar.finish();
            }
            None if self.mode == ProgressMode::Log => {
                self.log(rows, self.bytes_read.load(Ordering::Relaxed));
            }
            None => {}
        }
    }
}

/// Field `i` of `record` as text (empty when the row is short).
fn field(record: &csv::ByteRecord, i: usize) -> Result<&str, &'static str> {
    std::str::from_utf8(record.get(i).unwrap_or_default()).map_err(|_| "a field is not valid UTF-8")
}

/// One row's bar, or its date (when readable) and why it is refused.
fn bar(
    record: &csv::ByteRecord,
    columns: &Columns,
    symbol: &str,
    today: NaiveDate,
) -> Result<Bar, (Option<NaiveDate>, &'static str)> {
    let text = |i: usize| field(record, i).map_err(|reason| (None, reason));
    let date = text(columns.date)?.parse::<NaiveDate>().ok();
    let adj_close = match columns.adj_close {
        Some(i) => Some(text(i)?).filter(|text| !text.is_empty()),
        None => None,
    };
    let prices = Prices {
        open: text(columns.open)?,
        high: text(columns.high)?,
        low: text(columns.low)?,
        close: text(columns.close)?,
        adj_close,
    };
    validate::fields(symbol, date, prices, text(columns.volume)?, today)
        .map_err(|reason| (date, reason))
}

/// Reads every row, validating and sending the bars to the loader, until the end of the file,
/// a read error, a cancellation or the loader's failure.
fn read_rows(
    mut opened: Opened,
    today: NaiveDate,
    loader: &mpsc::Sender<Message>,
    cancelled: &AtomicBool,
    progress: &mut Progress,
) -> Reading {
    let mut read = Reading::default();
    let columns = opened.columns;
    let mut record = csv::ByteRecord::new();
    let mut chunk: Vec<(Bar, Source)> = Vec::with_capacity(CHUNK);
    let field = |record: &csv::ByteRecord, i: usize| -> Result<String, &'static str> {
        field(record, i).map(str::to_ascii_uppercase)
    };
    loop {
        match opened.reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                let line = error.position().map_or(0, csv::Position::line);
                read.error = Some(format!("reading the file failed at line {line}: {error}"));
                break;
            }
        }
        let line = record.position().map_or(0, csv::Position::line);
        if read.rows % CHUNK as u64 == 0 {
            progress.update(read.rows);
            if cancelled.load(Ordering::Relaxed) {
                read.cancelled = true;
                break;
            }
        }
        read.rows += 1;
        if record.iter().all(<[u8]>::is_empty) {
            // A row of empty fields (`,,,,`) is not a bar: said, not skipped. (The reader skips
            // blank lines itself.)
            read.reject(line, "", None, "the row is empty");
            continue;
        }
        let symbol = match (columns.symbol, &opened.symbol) {
            (_, Some(symbol)) => Ok(symbol.clone()),
            (Some(i), None) => field(&record, i),
            (None, None) => Err("no symbol"),
        };
        let symbol = match symbol {
            Ok(symbol) if Symbol::is_valid(&symbol) => symbol,
            Ok(_) => {
                let reason = format!("the symbol is not one ({})", Symbol::SPELLING);
                read.reject(line, "", None, &reason);
                continue;
            }
            Err(reason) => {
                read.reject(line, "", None, reason);
                continue;
            }
        };
        if !read.symbols.contains_key(symbol.as_str()) {
            read.symbols
                .insert(symbol.clone().into(), SymbolState::default());
        }
        let bar = match bar(&record, &columns, &symbol, today) {
            Ok(bar) => bar,
            Err((date, reason)) => {
                read.reject(line, &symbol, date, reason);
                continue;
            }
        };
        let Some(state) = read.symbols.get_mut(symbol.as_str()) else {
            continue;
        };
        if !state.days.insert(bar.date) {
            read.reject(
                line,
                &symbol,
                Some(bar.date),
                "the symbol and date appear on an earlier line of the file",
            );
            continue;
        }
        state.loaded += 1;
        read.loaded += 1;
        read.first_day = Some(read.first_day.map_or(bar.date, |d| d.min(bar.date)));
        read.last_day = Some(read.last_day.map_or(bar.date, |d| d.max(bar.date)));
        chunk.push((bar, SOURCE));
        if chunk.len() >= CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if loader.blocking_send(Message::Bars(full)).is_err() {
                // Cancelled, or the loader failed (its error says why).
                read.cancelled = cancelled.load(Ordering::Relaxed);
                return read;
            }
        }
    }
    if !chunk.is_empty() {
        // A failed loader reports itself.
        let _ = loader.blocking_send(Message::Bars(chunk));
    }
    progress.finish(read.rows);
    read
}

/// Runs one import: open and check the file, take the lock, stream the rows to the loader,
/// record the run. Returns when the file is read, or at the next chunk after `shutdown`
/// resolves (recorded as cancelled).
pub async fn run<F>(
    config: &Config,
    request: Request,
    now: DateTime<Utc>,
    shutdown: F,
) -> Result<Outcome, EtlError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let today = calendar::new_york_date(now);
    // Reading stdin blocks: the header too is read off the async threads. Errors here (no such
    // file, an unknown column) are usage errors, before the lock or any row of etl_run.
    let progress_mode = request.progress;
    let (opened_tx, opened) = oneshot::channel();
    std::thread::Builder::new()
        .name("csv-open".to_owned())
        .spawn(move || {
            let _ = opened_tx.send(open(&request));
        })
        .map_err(|e| EtlError::Usage(format!("--file: cannot start reading: {e}")))?;
    let mut shutdown = Box::pin(shutdown);
    let opened = tokio::select! {
        opened = opened => opened
            .map_err(|_| EtlError::Usage("--file: reading the header stopped".to_owned()))??,
        () = &mut shutdown => {
            return Err(EtlError::Usage(
                "--file: cancelled by a shutdown signal before the header was read".to_owned(),
            ))
        }
    };

    super::with_writer(config, |db| async move {
        locked(config, &db, opened, today, progress_mode, shutdown).await
    })
    .await
}

async fn locked<F>(
    config: &Config,
    db: &sqlx::PgPool,
    opened: Opened,
    today: NaiveDate,
    progress_mode: ProgressMode,
    mut shutdown: std::pin::Pin<Box<F>>,
) -> Result<Outcome, EtlError>
where
    F: Future<Output = ()> + Send + 'static,
{
    if !runs::schema_ready(db).await? {
        return Err(EtlError::NotMigrated);
    }
    runs::mark_abandoned(db).await?;
    let run_id = runs::start_unscoped(db, &[SOURCE]).await?;
    tracing::info!(
        run_id,
        layout = if opened.symbol.is_some() {
            "per-symbol"
        } else {
            "long"
        },
        bytes = opened.size,
        "csv import started"
    );

    // The reader is a thread of its own, not a blocking task of the runtime: a read of standard
    // input can block for good (a producer that stalls), and the process must still end on a
    // shutdown signal, which it could not while the runtime waited for a blocking task.
    let cancelled = Arc::new(AtomicBool::new(false));
    let mut progress = Progress::new(progress_mode, opened.bytes_read.clone(), opened.size);
    let rows_read = progress.rows.clone();
    let (rows_tx, mut rows) = mpsc::channel::<Message>(8);
    let (done_tx, done) = oneshot::channel();
    {
        let cancelled = cancelled.clone();
        std::thread::Builder::new()
            .name("csv-reader".to_owned())
            .spawn(move || {
                let _ = done_tx.send(read_rows(
                    opened,
                    today,
                    &rows_tx,
                    &cancelled,
                    &mut progress,
                ));
            })
            .map_err(|e| EtlError::Usage(format!("--file: cannot start reading: {e}")))?;
    }
    let (tx, rx) = mpsc::channel(8);
    let loader = tokio::spawn(load::consume(db.clone(), rx, config.etl.batch_size));
    // Forwarded to the loader until the reader is done or a shutdown signal arrives; then what
    // the reader already sent is written, and the loader ends.
    let signalled = loop {
        tokio::select! {
            message = rows.recv() => {
                let Some(message) = message else { break false };
                if tx.send(message).await.is_err() {
                    break false;
                }
            }
            () = &mut shutdown => break true,
        }
    };
    if signalled {
        cancelled.store(true, Ordering::Relaxed);
        rows.close();
        while let Ok(message) = rows.try_recv() {
            if tx.send(message).await.is_err() {
                break;
            }
        }
    }
    drop(tx);
    let loaded = loader.await;
    let read = if signalled {
        // The reader stops at its next chunk; one blocked on a read is left behind (the
        // process ends without it), and its counts of rows and rejects with it.
        match tokio::time::timeout(Duration::from_secs(2), done).await {
            // It may have stopped on the closed channel before it saw the flag.
            Ok(Ok(read)) => Reading {
                cancelled: true,
                ..read
            },
            _ => Reading {
                cancelled: true,
                rows: rows_read.load(Ordering::Relaxed),
                ..Reading::default()
            },
        }
    } else {
        done.await.unwrap_or_else(|_| Reading {
            error: Some("the reader stopped without a word".to_owned()),
            ..Reading::default()
        })
    };
    let (counts, load_error) = match loaded {
        Ok(Ok(counts)) => (counts, None),
        Ok(Err(error)) => (Counts::default(), Some(error.to_string())),
        Err(error) => (Counts::default(), Some(error.to_string())),
    };
    let days = read.first_day.zip(read.last_day);
    let symbols_requested = read.symbols.len();
    let finish = conclude(&read, counts, load_error, symbols_requested);
    runs::scope(db, run_id, days, symbols_requested).await?;
    runs::finish(db, run_id, &finish).await?;
    let (from, to) = days.unwrap_or((today, today));
    Ok(Outcome {
        run_id,
        from,
        to,
        symbols_requested,
        finish,
    })
}

/// The status and the record of an import.
fn conclude(
    read: &Reading,
    counts: Counts,
    load_error: Option<String>,
    symbols_requested: usize,
) -> Finish {
    let succeeded = read.symbols.values().filter(|s| s.loaded > 0).count();
    let failed = symbols_requested.saturating_sub(succeeded);
    let rejects = read.first_reject.as_ref().map_or(String::new(), |first| {
        format!("{} row(s) rejected, first {first}", read.rejected)
    });
    let (status, summary) = if let Some(error) = load_error {
        (
            Status::Failed,
            Some(format!(
                "Writing bars failed: {error}; earlier batches are committed."
            )),
        )
    } else if read.cancelled {
        (
            Status::Cancelled,
            Some(format!(
                "Cancelled by a shutdown signal after {} row(s); every batch written before it is committed.",
                read.rows
            )),
        )
    } else if let Some(error) = &read.error {
        let status = if read.loaded > 0 {
            Status::Partial
        } else {
            Status::Failed
        };
        let rejects = if rejects.is_empty() {
            rejects
        } else {
            format!("{rejects}. ")
        };
        (
            status,
            Some(format!(
                "{rejects}{error}; the {} row(s) before it were loaded.",
                read.loaded
            )),
        )
    } else if read.rows == 0 {
        (
            Status::Failed,
            Some("The file holds a header and no rows.".to_owned()),
        )
    } else if read.loaded == 0 {
        (
            Status::Failed,
            Some(format!("No row could be loaded: {rejects}.")),
        )
    } else if read.rejected > 0 {
        (Status::Partial, Some(format!("{rejects}.")))
    } else {
        (Status::Succeeded, None)
    };
    Finish {
        status,
        providers: vec![SOURCE.to_owned()],
        symbols_succeeded: succeeded as u64,
        symbols_failed: failed as u64,
        counts,
        rejected: read.rejected,
        error_summary: summary,
        failures: read.failures.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> csv::ByteRecord {
        csv::ByteRecord::from(text.split(',').collect::<Vec<_>>())
    }

    #[test]
    fn header_names_match_whatever_their_case_spaces_and_underscores() {
        let (columns, symbol) = Columns::from_header(
            &header("Date,Open,High,Low,Close,Adj Close,Volume"),
            Some(&["aapl".to_owned()]),
        )
        .unwrap();
        assert_eq!(
            (columns.date, columns.adj_close, columns.volume),
            (0, Some(5), 6)
        );
        assert_eq!(symbol.as_deref(), Some("AAPL"));

        let (columns, symbol) = Columns::from_header(
            &header("\u{feff}SYMBOL,date,OPEN,high,low,close,adj_close,Volume"),
            None,
        )
        .unwrap();
        assert_eq!((columns.symbol, columns.adj_close), (Some(0), Some(6)));
        assert_eq!(symbol, None);
    }

    #[test]
    fn a_bad_header_or_symbols_flag_is_a_usage_error_naming_the_flag() {
        let message = |h: &str, s: Option<&[String]>| {
            Columns::from_header(&header(h), s).unwrap_err().to_string()
        };
        let one = ["X".to_owned()];
        let two = ["X".to_owned(), "Y".to_owned()];
        assert!(message("date,open,high,low,close,volume,vwap", Some(&one))
            .starts_with("--file: unknown column \"vwap\""));
        assert!(message("date,open,high,low,close", Some(&one))
            .starts_with("--file: the header has no \"volume\" column"));
        assert!(message("date,open,high,low,close,volume", None).starts_with("--symbols: required"));
        assert!(message("date,open,high,low,close,volume", Some(&two))
            .contains("exactly one symbol, got 2"));
        assert!(
            message("symbol,date,open,high,low,close,volume", Some(&one))
                .starts_with("--symbols: the file has a symbol column")
        );
        assert!(message("date,Date,open,high,low,close,volume", Some(&one)).contains("twice"));
    }

    #[test]
    fn a_day_is_new_once_per_symbol_in_any_order() {
        let mut days = Days::default();
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert!(days.insert(d("2025-01-14")));
        assert!(days.insert(d("2024-01-02")));
        assert!(days.insert(d("2025-06-30")));
        assert!(!days.insert(d("2025-01-14")));
        assert!(!days.insert(d("2024-01-02")));
        assert!(days.insert(d("2024-01-03")));
        assert!(!days.insert(d("2025-06-30")));
    }
}
