//! Fetching: asks each provider in turn for the symbols the previous one could not supply,
//! validates every payload, and streams the bars to the loader.
//!
//! FMP is asked symbol by symbol, each for its own range (a run that catches up starts each
//! symbol the day after its last stored bar). Polygon is asked day by day through its grouped
//! endpoint when that takes fewer requests (fewer trading days, from the earliest start, than
//! symbols: a daily run), keeping from each day only the symbols that need it, else symbol by
//! symbol. Either way one symbol's or one day's bars are in memory at a time, per task.
//!
//! A provider's refusal of one symbol (see [`super::provider::errors`]) fails that symbol there
//! and nowhere else: the provider goes on with the others, and the next provider may be asked for
//! it. Only a refusal of the account, or the run's deadline, stops the requests to a provider.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use url::Url;

use super::client::Client;
use super::load::Message;
use super::provider::{fmp, polygon, FetchError, Provider, RawBar};
use super::validate::{self, Checked};
use crate::config::Secret;
use crate::db::etl_runs::Failure;

/// Most Polygon pages followed for one symbol: 50,000 bars a page is 200 years of days, so more
/// than this is a provider looping on its cursor.
const MAX_PAGES: usize = 20;

/// A provider ready to be asked.
#[derive(Debug, Clone)]
pub enum Source {
    /// FMP, with its key (sent in the query).
    Fmp {
        /// The HTTP client (rate limit, retries).
        client: Client,
        /// The configured base URL.
        base: Url,
        /// The API key.
        key: Secret,
    },
    /// Polygon (its key is in the client's bearer header).
    Polygon {
        /// The HTTP client.
        client: Client,
        /// The configured base URL.
        base: Url,
    },
}

impl Source {
    /// Which provider this is.
    pub fn provider(&self) -> Provider {
        match self {
            Self::Fmp { .. } => Provider::Fmp,
            Self::Polygon { .. } => Provider::Polygon,
        }
    }

    /// Every bar of `symbol` from `from` to `to`.
    async fn symbol(
        &self,
        symbol: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<RawBar>, FetchError> {
        match self {
            Self::Fmp { client, base, key } => {
                let url = fmp::url(base, key, symbol, from, to);
                client.get(&url, |body| fmp::parse(symbol, body)).await
            }
            Self::Polygon { client, base } => {
                let mut url = polygon::aggregates_url(base, symbol, from, to);
                let mut bars = Vec::new();
                for _ in 0..MAX_PAGES {
                    let page = client
                        .get(&url, |body| polygon::parse(Some(symbol), body, base))
                        .await?;
                    bars.extend(page.bars);
                    match page.next {
                        Some(next) => url = next,
                        None => return Ok(bars),
                    }
                }
                Err(FetchError::Provider(format!(
                    "Polygon: more than {MAX_PAGES} pages for one symbol"
                )))
            }
        }
    }
}

/// What fetching came to.
#[derive(Debug, Default)]
pub struct Report {
    /// Symbols some provider supplied.
    pub succeeded: BTreeSet<String>,
    /// Symbols no provider supplied.
    pub failed: BTreeSet<String>,
    /// Bars refused by validation.
    pub rejected: u64,
    /// What went wrong, per symbol and provider (rejects included).
    pub failures: Vec<Failure>,
    /// Providers actually asked, in order.
    pub asked: Vec<Provider>,
    /// Stopped by a shutdown signal.
    pub cancelled: bool,
    /// The loader stopped taking bars (it failed; its error says why).
    pub loader_gone: bool,
}

/// The fixed inputs of one fetch.
pub struct Plan {
    /// The providers in order: primary, then fallback.
    pub sources: Vec<Source>,
    /// The first and last trading day.
    pub from: NaiveDate,
    /// See `from`.
    pub to: NaiveDate,
    /// The trading days between them.
    pub days: Vec<NaiveDate>,
    /// The first day asked for each symbol, when it is not `from` (a run that catches up).
    pub starts: HashMap<String, NaiveDate>,
    /// Today in New York: bars after it are rejected.
    pub today: NaiveDate,
    /// The run's deadline.
    pub deadline: Instant,
    /// Symbols fetched at once (the rate limit still spaces their requests).
    pub concurrency: usize,
}

impl Plan {
    /// The first day asked for `symbol`.
    pub fn start(&self, symbol: &str) -> NaiveDate {
        self.starts.get(symbol).copied().unwrap_or(self.from)
    }

    /// The trading days some of `symbols` need: from the earliest start on.
    fn days_for(&self, symbols: &[String]) -> &[NaiveDate] {
        let first = symbols
            .iter()
            .map(|s| self.start(s))
            .min()
            .unwrap_or(self.to);
        let skip = self.days.partition_point(|day| *day < first);
        &self.days[skip..]
    }
}

/// Fetches `symbols` per `plan`, sending bars to `loader`, until done, cancelled or past the
/// deadline.
pub async fn supply(
    plan: Arc<Plan>,
    symbols: Vec<String>,
    loader: mpsc::Sender<Message>,
    mut cancel: watch::Receiver<bool>,
) -> Report {
    let mut report = Report::default();
    let mut pending = symbols;
    for source in &plan.sources {
        if pending.is_empty() || report.cancelled || report.loader_gone {
            break;
        }
        if !report.asked.is_empty() && loader.send(Message::Flush).await.is_err() {
            report.loader_gone = true;
            break;
        }
        report.asked.push(source.provider());
        let grouped =
            source.provider() == Provider::Polygon && plan.days_for(&pending).len() < pending.len();
        pending = if grouped {
            by_day(&plan, source, pending, &loader, &mut cancel, &mut report).await
        } else {
            by_symbol(&plan, source, pending, &loader, &mut cancel, &mut report).await
        };
    }
    if !report.cancelled && !report.loader_gone {
        for symbol in pending {
            report.succeeded.remove(&symbol);
            report.failed.insert(symbol);
        }
    }
    report
}

/// One symbol at a time per task, `plan.concurrency` tasks; the symbols not supplied.
async fn by_symbol(
    plan: &Arc<Plan>,
    source: &Source,
    symbols: Vec<String>,
    loader: &mpsc::Sender<Message>,
    cancel: &mut watch::Receiver<bool>,
    report: &mut Report,
) -> Vec<String> {
    let provider = source.provider();
    let mut queue = symbols.into_iter();
    let mut missing = Vec::new();
    let mut tasks = JoinSet::new();
    let mut stop: Option<String> = None;
    loop {
        while stop.is_none() && tasks.len() < plan.concurrency.max(1) {
            let Some(symbol) = queue.next() else { break };
            if Instant::now() >= plan.deadline {
                stop = Some(FetchError::Deadline.to_string());
                missing.push(symbol);
                break;
            }
            let (plan, source) = (Arc::clone(plan), source.clone());
            tasks.spawn(async move {
                let from = plan.start(&symbol);
                let result = source.symbol(&symbol, from, plan.to).await;
                let checked = result.map(|raws| validate::check(raws, from, plan.to, plan.today));
                (symbol, checked)
            });
        }
        let joined = tokio::select! {
            joined = tasks.join_next() => joined,
            Ok(_) = cancel.wait_for(|c| *c) => {
                tasks.abort_all();
                report.cancelled = true;
                return missing;
            }
        };
        let Some(joined) = joined else { break };
        let Ok((symbol, result)) = joined else {
            continue;
        };
        match result {
            Ok(checked) => {
                if !accept(provider, &symbol, checked, loader, report).await {
                    if report.loader_gone {
                        tasks.abort_all();
                        return missing;
                    }
                    missing.push(symbol);
                }
            }
            Err(error) => {
                if error.disables_provider() && stop.is_none() {
                    tracing::warn!(
                        provider = provider.as_str(),
                        error = %error,
                        "no further requests go to this provider during this run"
                    );
                    stop = Some(error.to_string());
                }
                report
                    .failures
                    .push(failure(&symbol, provider, &error.to_string()));
                missing.push(symbol);
            }
        }
    }
    // Symbols never asked because the provider was disabled or the deadline passed.
    for symbol in queue {
        if let Some(reason) = &stop {
            report
                .failures
                .push(failure(&symbol, provider, &format!("not asked: {reason}")));
        }
        missing.push(symbol);
    }
    missing
}

/// Polygon's grouped daily bars, one request per trading day; the symbols not supplied.
async fn by_day(
    plan: &Arc<Plan>,
    source: &Source,
    symbols: Vec<String>,
    loader: &mpsc::Sender<Message>,
    cancel: &mut watch::Receiver<bool>,
    report: &mut Report,
) -> Vec<String> {
    let Source::Polygon { client, base } = source else {
        return symbols;
    };
    // Each symbol from its own start: a day before it is already stored.
    let starts: HashMap<&str, NaiveDate> = symbols
        .iter()
        .map(|s| (s.as_str(), plan.start(s)))
        .collect();
    let mut supplied: HashSet<String> = HashSet::new();
    let mut failed_days: Vec<NaiveDate> = Vec::new();
    for &day in plan.days_for(&symbols) {
        let url = polygon::grouped_url(base, day);
        let fetched = tokio::select! {
            fetched = client.get(&url, |body| polygon::parse(None, body, base)) => fetched,
            Ok(_) = cancel.wait_for(|c| *c) => {
                report.cancelled = true;
                return Vec::new();
            }
        };
        match fetched {
            Ok(page) => {
                let raws: Vec<RawBar> = page
                    .bars
                    .into_iter()
                    .filter(|bar| starts.get(bar.symbol.as_str()).is_some_and(|s| *s <= day))
                    .collect();
                let checked = validate::check(raws, day, day, plan.today);
                record_rejects(Provider::Polygon, &checked, report);
                supplied.extend(checked.bars.iter().map(|b| b.symbol.clone()));
                let bars = checked
                    .bars
                    .into_iter()
                    .map(|b| (b, Provider::Polygon.as_str()))
                    .collect();
                if loader.send(Message::Bars(bars)).await.is_err() {
                    report.loader_gone = true;
                    return Vec::new();
                }
            }
            Err(error) => {
                failed_days.push(day);
                report.failures.push(failure(
                    "*",
                    Provider::Polygon,
                    &format!("grouped bars for {day}: {error}"),
                ));
                if error.disables_provider() {
                    // The days never asked are missing for every symbol that needs them.
                    let later = plan.days_for(&symbols).iter().filter(|d| **d > day);
                    failed_days.extend(later);
                    break;
                }
            }
        }
    }
    let mut missing = Vec::new();
    for symbol in symbols {
        let start = plan.start(&symbol);
        let a_day_failed = failed_days.iter().any(|day| *day >= start);
        if supplied.contains(&symbol) && !a_day_failed {
            report.succeeded.insert(symbol);
        } else {
            if !supplied.contains(&symbol) && !a_day_failed {
                report
                    .failures
                    .push(failure(&symbol, Provider::Polygon, "no data"));
            }
            missing.push(symbol);
        }
    }
    missing
}

/// Sends a symbol's checked bars to the loader; whether the symbol counts as supplied.
async fn accept(
    provider: Provider,
    symbol: &str,
    checked: Checked,
    loader: &mpsc::Sender<Message>,
    report: &mut Report,
) -> bool {
    record_rejects(provider, &checked, report);
    if checked.bars.is_empty() {
        if checked.rejects.is_empty() {
            report.failures.push(failure(symbol, provider, "no data"));
        }
        return false;
    }
    let bars = checked
        .bars
        .into_iter()
        .map(|b| (b, provider.as_str()))
        .collect();
    if loader.send(Message::Bars(bars)).await.is_err() {
        report.loader_gone = true;
        return false;
    }
    report.succeeded.insert(symbol.to_owned());
    true
}

fn record_rejects(provider: Provider, checked: &Checked, report: &mut Report) {
    report.rejected += checked.rejects.len() as u64;
    let mut symbols: Vec<&str> = checked.rejects.iter().map(|r| r.symbol.as_str()).collect();
    symbols.sort_unstable();
    symbols.dedup();
    for symbol in symbols {
        let mine: Vec<_> = checked
            .rejects
            .iter()
            .filter(|r| r.symbol == symbol)
            .collect();
        let first = mine[0];
        let date = first
            .date
            .map_or_else(|| "no date".to_owned(), |d| d.to_string());
        report.failures.push(failure(
            symbol,
            provider,
            &format!(
                "{} bar(s) rejected, first {date}: {}",
                mine.len(),
                first.reason
            ),
        ));
    }
}

fn failure(symbol: &str, provider: Provider, error: &str) -> Failure {
    Failure {
        symbol: symbol.to_owned(),
        provider: provider.as_str().to_owned(),
        error: super::redact::redact(error),
    }
}
