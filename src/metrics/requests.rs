//! The request metrics: requests answered by route template, method and status, their latency
//! histogram, and the requests in flight.
//!
//! Recorded per thread and merged when scraped. Every request updates them, from every worker
//! thread at once: kept in shared atomics and label maps (prometheus-client's families), each
//! request bounced the same cache lines between the cores (the families' locks, the histogram's,
//! the counters) and cost more than its share of serving `/health`. Here a thread writes to a
//! shard of its own, one lock nobody else takes until a scrape, and one label lookup per request.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{Method, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, LabelValueEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;

/// The route label of a request no route matched: never the raw path, which a client chooses.
pub const UNMATCHED: &str = "unmatched";

/// Request latency buckets (upper bounds), in seconds: 1 ms to 30 s, then +Inf.
const LATENCY_BUCKETS: [f64; 16] = [
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    16.0,
    30.0,
    f64::INFINITY,
];

/// Shards: enough that the worker threads of any machine this runs on rarely share one.
const SHARDS: usize = 32;

/// A route label: the template the router matched, or [`UNMATCHED`].
///
/// It holds axum's [`MatchedPath`] (a shared string) rather than a copy, so that counting a
/// request allocates nothing; equal and hashed by its text.
#[derive(Debug, Clone)]
pub enum Route {
    /// A route's template, such as `/api/v1/prices/{symbol}`.
    Matched(MatchedPath),
    /// No route matched.
    Unmatched,
}

impl Route {
    /// The label's text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Matched(path) => path.as_str(),
            Self::Unmatched => UNMATCHED,
        }
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Route,
    method: &'static str,
}

#[derive(Debug, Clone, EncodeLabelSet)]
struct RequestLabels {
    route: Route,
    method: &'static str,
    status: u16,
}

/// What one thread recorded for one route and method.
#[derive(Debug, Clone, Default)]
struct Series {
    /// Requests answered, by status (a handful per route: searched in order).
    statuses: Vec<(u16, u64)>,
    /// Requests per latency bucket (not cumulative), [`LATENCY_BUCKETS`]' order.
    buckets: [u64; LATENCY_BUCKETS.len()],
    /// Their latencies' sum, in seconds.
    seconds: f64,
}

impl Series {
    fn record(&mut self, status: u16, seconds: f64) {
        self.count(status, 1);
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len() - 1);
        self.buckets[bucket] += 1;
        self.seconds += seconds;
    }

    /// Adds `n` requests answered with `status`.
    fn count(&mut self, status: u16, n: u64) {
        match self.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, total)) => *total += n,
            None => self.statuses.push((status, n)),
        }
    }

    fn add(&mut self, other: &Self) {
        for &(status, n) in &other.statuses {
            self.count(status, n);
        }
        for (total, n) in self.buckets.iter_mut().zip(other.buckets) {
            *total += n;
        }
        self.seconds += other.seconds;
    }
}

/// One thread's share, on cache lines of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    /// Requests started minus requests ended on this thread (either may be negative: a request
    /// can end on another thread than it started on; the sum over the shards is the gauge).
    in_flight: AtomicI64,
    series: Mutex<HashMap<RouteLabels, Series>>,
}

/// The request metrics. Registered as a collector: they are merged and written at each scrape.
///
/// Aligned to a cache line pair so that, in an `Arc`, the shards' pointer read by every request
/// does not share a line with the reference count every request's [`InFlight`] writes.
#[derive(Debug)]
#[repr(align(128))]
pub struct RequestMetrics {
    shards: Box<[Shard]>,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard, handed out in turn on first use.
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

impl RequestMetrics {
    fn shard(&self) -> &Shard {
        &self.shards[SHARD.with(|shard| *shard)]
    }

    /// Counts a request as started; it stays in flight until the guard is dropped, and
    /// [`InFlight::finish`] counts it as answered.
    pub fn start(self: &Arc<Self>, method: &Method) -> InFlight {
        self.shard().in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            metrics: Arc::clone(self),
            method: method_label(method),
        }
    }

    fn record(&self, route: Route, method: &'static str, status: StatusCode, elapsed: Duration) {
        let mut series = self
            .shard()
            .series
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        series
            .entry(RouteLabels { route, method })
            .or_default()
            .record(status.as_u16(), elapsed.as_secs_f64());
    }

    /// Every shard's series added up, in the order of their labels.
    fn merged(&self) -> Vec<(RouteLabels, Series)> {
        let mut merged: HashMap<RouteLabels, Series> = HashMap::new();
        for shard in &self.shards {
            let series = shard.series.lock().unwrap_or_else(PoisonError::into_inner);
            for (labels, one) in series.iter() {
                merged.entry(labels.clone()).or_default().add(one);
            }
        }
        let mut merged: Vec<_> = merged.into_iter().collect();
        merged.sort_by(|(a, _), (b, _)| {
            (a.route.as_str(), a.method).cmp(&(b.route.as_str(), b.method))
        });
        merged
    }

    fn in_flight(&self) -> i64 {
        self.shards
            .iter()
            .map(|shard| shard.in_flight.load(Ordering::Relaxed))
            .sum()
    }
}

impl Collector for RequestMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let merged = self.merged();
        if !merged.is_empty() {
            let mut requests = encoder.encode_descriptor(
                "http_requests",
                "HTTP requests answered, by route template, method and status",
                None,
                MetricType::Counter,
            )?;
            for (labels, series) in &merged {
                for &(status, n) in &series.statuses {
                    let labels = RequestLabels {
                        route: labels.route.clone(),
                        method: labels.method,
                        status,
                    };
                    requests
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
                }
            }
            let mut durations = encoder.encode_descriptor(
                "http_request_duration_seconds",
                "Time to answer HTTP requests, by route template and method",
                None,
                MetricType::Histogram,
            )?;
            for (labels, series) in &merged {
                let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                    .iter()
                    .copied()
                    .zip(series.buckets)
                    .collect();
                durations
                    .encode_family(labels)?
                    .encode_histogram::<NoLabelSet>(
                        series.seconds,
                        series.buckets.iter().sum(),
                        &buckets,
                        None,
                    )?;
            }
        }
        encoder
            .encode_descriptor(
                "http_requests_in_flight",
                "HTTP requests being answered",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&self.in_flight())
    }
}

/// A request in flight: dropping it (answered or cancelled) takes it out of the gauge.
#[derive(Debug)]
pub struct InFlight {
    metrics: Arc<RequestMetrics>,
    method: &'static str,
}

impl InFlight {
    /// Counts the request as answered under its route, with its status and how long it took.
    pub fn finish(self, route: Route, status: StatusCode, elapsed: Duration) {
        self.metrics.record(route, self.method, status, elapsed);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics
            .shard()
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// A bounded label for a method: the standard ones by name, anything else as "other".
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode_registry;
    use prometheus_client::registry::Registry;

    use super::*;

    /// The test series: unmatched GET requests.
    const SERIES: &str = r#"route="unmatched",method="GET""#;

    fn exposition(metrics: &Arc<RequestMetrics>) -> String {
        let mut registry = Registry::with_prefix("t");
        registry.register_collector(Box::new(Arc::clone(metrics)));
        let mut text = String::new();
        encode_registry(&mut text, &registry).unwrap();
        text
    }

    /// Panics unless `text` holds each of `lines`, whole.
    fn assert_lines(text: &str, lines: &[String]) {
        for line in lines {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }

    /// The histogram's line for the bucket `le`, with `count`.
    fn bucket(le: &str, count: u64) -> String {
        format!("t_http_request_duration_seconds_bucket{{le=\"{le}\",{SERIES}}} {count}")
    }

    #[test]
    fn requests_from_many_threads_add_up_by_labels_and_bucket() {
        let metrics = Arc::new(RequestMetrics::default());
        let threads: Vec<_> = (0..40)
            .map(|i| {
                let metrics = Arc::clone(&metrics);
                std::thread::spawn(move || {
                    let status = if i % 2 == 0 {
                        StatusCode::OK
                    } else {
                        StatusCode::NOT_FOUND
                    };
                    for _ in 0..100 {
                        metrics.start(&Method::GET).finish(
                            Route::Unmatched,
                            status,
                            Duration::from_millis(3),
                        );
                    }
                    // One left in flight per thread, ended on the main thread below.
                    metrics.start(&Method::POST)
                })
            })
            .collect();
        let open: Vec<InFlight> = threads.into_iter().map(|t| t.join().unwrap()).collect();

        assert_lines(
            &exposition(&metrics),
            &[
                format!("t_http_requests_total{{{SERIES},status=\"200\"}} 2000"),
                format!("t_http_requests_total{{{SERIES},status=\"404\"}} 2000"),
                format!("t_http_request_duration_seconds_count{{{SERIES}}} 4000"),
                // 3 ms: above the 2 ms bound, within the 5 ms one (buckets are cumulative).
                bucket("0.002", 0),
                bucket("0.005", 4000),
                bucket("+Inf", 4000),
                "t_http_requests_in_flight 40".to_owned(),
            ],
        );
        drop(open);
        assert_lines(
            &exposition(&metrics),
            &["t_http_requests_in_flight 0".to_owned()],
        );
    }

    #[test]
    fn the_sum_of_latencies_is_kept_and_a_slow_request_lands_in_inf() {
        let metrics = Arc::new(RequestMetrics::default());
        for millis in [1, 40_000] {
            metrics.start(&Method::GET).finish(
                Route::Unmatched,
                StatusCode::OK,
                Duration::from_millis(millis),
            );
        }
        assert_lines(
            &exposition(&metrics),
            &[
                format!("t_http_request_duration_seconds_sum{{{SERIES}}} 40.001"),
                bucket("30.0", 1),
                bucket("+Inf", 2),
            ],
        );
    }

    #[test]
    fn nothing_answered_yet_exposes_the_gauge_alone() {
        let text = exposition(&Arc::new(RequestMetrics::default()));
        assert_lines(&text, &["t_http_requests_in_flight 0".to_owned()]);
        assert!(!text.contains("t_http_requests_total"), "{text}");
    }
}
