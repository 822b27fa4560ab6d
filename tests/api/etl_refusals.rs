//! A provider's refusal of one ticker fails that ticker alone; only a refusal of the account
//! stops the requests to a provider. Against FMP and Polygon doubles that mix every kind of
//! answer in one run, with the request counts per ticker and provider as the evidence.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use sigmasight::config::Provider;
use sigmasight::db::etl_runs::Status;
use sigmasight::etl::{self, Dates, Outcome};
use wiremock::matchers::{path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::etl::{
    d, etl_config, fmp_body, fmp_serves, json_body, noon, options, polygon_bar, prices, request,
    run_row, FMP_PATH,
};
use crate::helpers::{connect, migrated_database};

/// Monday 6 to Tuesday 14 January 2025: six trading days (the 9th was a closure), more than
/// the symbols FMP leaves to Polygon, so Polygon is asked ticker by ticker.
const DAYS: [&str; 6] = [
    "2025-01-06",
    "2025-01-07",
    "2025-01-08",
    "2025-01-10",
    "2025-01-13",
    "2025-01-14",
];

const PREMIUM: &str = r#"{"Error Message": "Premium Query Parameter: 'Special Endpoint : This value set for 'symbol' is not available under your current subscription please visit our subscription page to upgrade your plan at https://site.financialmodelingprep.com/developer/docs/pricing"}"#;
const NOT_ENTITLED: &str = r#"{"status":"NOT_AUTHORIZED","request_id":"5b0d","message":"You are not entitled to this data. Please upgrade your plan at https://massive.com/pricing"}"#;

/// Polygon's per-ticker aggregates for `DAYS` (bars start at midnight New York, 05:00 UTC).
fn polygon_aggregates(symbol: &str) -> String {
    let results: Vec<_> = DAYS
        .iter()
        .map(|day| {
            let t = d(day).and_hms_opt(5, 0, 0).unwrap().and_utc();
            polygon_bar(t.timestamp_millis(), None)
        })
        .collect();
    json!({"ticker": symbol, "status": "OK", "adjusted": true, "request_id": "r",
           "resultsCount": results.len(), "results": results})
    .to_string()
}

async fn polygon_serves(server: &MockServer, symbol: &str, response: ResponseTemplate) {
    Mock::given(path(format!(
        "/v2/aggs/ticker/{symbol}/range/1/day/{}/{}",
        DAYS[0], DAYS[5]
    )))
    .respond_with(response)
    .mount(server)
    .await;
}

/// How many requests each ticker cost at each provider, as the doubles saw them.
async fn requests(fmp: &MockServer, polygon: &MockServer) -> BTreeMap<(String, &'static str), u32> {
    let mut counts = BTreeMap::new();
    for request in fmp.received_requests().await.unwrap() {
        let symbol = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "symbol")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        *counts.entry((symbol, "fmp")).or_insert(0) += 1;
    }
    for request in polygon.received_requests().await.unwrap() {
        let symbol = request
            .url
            .path()
            .split('/')
            .nth(4)
            .unwrap_or("")
            .to_owned();
        *counts.entry((symbol, "polygon")).or_insert(0) += 1;
    }
    counts
}

/// The tickers of one run, the two refused ones named so that they sort `at` a place among the
/// others ("A" first, "M" in the middle, "Z" last).
struct Universe {
    premium: String,
    unentitled: String,
}

impl Universe {
    fn named(at: char) -> Self {
        Self {
            premium: format!("{at}PREM"),
            unentitled: format!("{at}UNENT"),
        }
    }

    fn symbols(&self) -> Vec<&str> {
        let mut symbols = vec![
            "CLEANA",
            "CLEANB",
            "CLEANC",
            "EMPTY",
            "FAIL",
            "RATE",
            "SLOW",
            "TRUNC",
            &self.premium,
            &self.unentitled,
        ];
        symbols.sort_unstable();
        symbols
    }
}

/// FMP, the primary: clean tickers; one premium and one unentitled ticker refused with 402; one
/// rate-limited once; one that fails with 500 every time; one slower than the request timeout
/// once; one truncated; one with no data. Polygon, the fallback, serves the premium, failing and
/// truncated tickers, refuses the unentitled one with 403 `NOT_AUTHORIZED`, and has no data for
/// the empty one.
async fn doubles(universe: &Universe) -> (MockServer, MockServer) {
    let fmp = MockServer::start().await;
    let polygon = MockServer::start().await;
    for symbol in ["CLEANA", "CLEANB", "CLEANC", "RATE", "SLOW"] {
        fmp_serves(&fmp, symbol, json_body(fmp_body(symbol, &DAYS))).await;
    }
    for symbol in [&universe.premium, &universe.unentitled] {
        fmp_serves(
            &fmp,
            symbol,
            ResponseTemplate::new(402).set_body_raw(PREMIUM, "application/json"),
        )
        .await;
    }
    Mock::given(path(FMP_PATH))
        .and(query_param("symbol", "RATE"))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fmp)
        .await;
    // Three times the request timeout of `options`, once.
    Mock::given(path(FMP_PATH))
        .and(query_param("symbol", "SLOW"))
        .respond_with(json_body(fmp_body("SLOW", &DAYS)).set_delay(Duration::from_millis(1500)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fmp)
        .await;
    fmp_serves(&fmp, "FAIL", ResponseTemplate::new(500)).await;
    let whole = fmp_body("TRUNC", &DAYS);
    fmp_serves(&fmp, "TRUNC", json_body(&whole[..whole.len() / 2])).await;
    fmp_serves(&fmp, "EMPTY", json_body("[]")).await;

    for symbol in [&universe.premium, "FAIL", "TRUNC"] {
        polygon_serves(&polygon, symbol, json_body(polygon_aggregates(symbol))).await;
    }
    polygon_serves(
        &polygon,
        &universe.unentitled,
        ResponseTemplate::new(403).set_body_raw(NOT_ENTITLED, "application/json"),
    )
    .await;
    polygon_serves(
        &polygon,
        "EMPTY",
        json_body(r#"{"ticker":"EMPTY","status":"OK","resultsCount":0,"request_id":"e"}"#),
    )
    .await;
    (fmp, polygon)
}

#[tokio::test]
async fn a_ticker_refused_by_either_provider_fails_alone_wherever_it_comes_in_the_run() {
    for at in ['A', 'M', 'Z'] {
        // Arrange
        let universe = Universe::named(at);
        let database = migrated_database().await;
        let (fmp, polygon) = doubles(&universe).await;
        let config = etl_config(&database, &fmp, Some(&polygon), |f| f);
        let mut options = options(noon());
        // One request at a time: the refusals come exactly where their names sort.
        options.concurrency = 1;

        // Act
        let outcome = etl::run(
            &config,
            request(Dates::Range(d(DAYS[0]), d(DAYS[5])), &universe.symbols()),
            options,
            std::future::pending(),
        )
        .await
        .unwrap();

        // Assert: who was asked for what, and how often.
        let (prem, unent) = (universe.premium.as_str(), universe.unentitled.as_str());
        let mut expected: BTreeMap<(String, &str), u32> = BTreeMap::new();
        for (symbol, provider, count) in [
            ("CLEANA", "fmp", 1),
            ("CLEANB", "fmp", 1),
            ("CLEANC", "fmp", 1),
            // 429 once, then served: a retry within the policy.
            ("RATE", "fmp", 2),
            // Timed out once, then served.
            ("SLOW", "fmp", 2),
            // The first attempt and the three retries of `options`.
            ("FAIL", "fmp", 4),
            ("FAIL", "polygon", 1),
            // A refusal is never retried.
            (prem, "fmp", 1),
            (prem, "polygon", 1),
            (unent, "fmp", 1),
            (unent, "polygon", 1),
            ("TRUNC", "fmp", 1),
            ("TRUNC", "polygon", 1),
            ("EMPTY", "fmp", 1),
            ("EMPTY", "polygon", 1),
        ] {
            expected.insert((symbol.to_owned(), provider), count);
        }
        assert_eq!(requests(&fmp, &polygon).await, expected, "refusals at {at}");

        // Every clean ticker came from FMP, the refused premium one from Polygon.
        assert_eq!(outcome.status(), Status::Partial, "{}", outcome.summary());
        let sources = sources(&database).await;
        for symbol in ["CLEANA", "CLEANB", "CLEANC", "RATE", "SLOW"] {
            assert_eq!(sources[symbol], ("fmp".to_owned(), 6), "{symbol} at {at}");
        }
        for symbol in [prem, "FAIL", "TRUNC"] {
            assert_eq!(
                sources[symbol],
                ("polygon".to_owned(), 6),
                "{symbol} at {at}"
            );
        }
        assert!(!sources.contains_key(unent) && !sources.contains_key("EMPTY"));

        // The run record names each failed ticker and why, at each provider.
        let record = run_row(&mut connect(&database).await, outcome.run_id).await;
        assert_eq!(record["status"], "partial");
        assert_eq!(record["symbols_succeeded"], 8);
        assert_eq!(record["symbols_failed"], 2);
        let failures = failures(&outcome);
        for (symbol, provider, reason) in [
            (unent, "fmp", "not entitled: fmp answered HTTP 402: Premium Query Parameter"),
            (
                unent,
                "polygon",
                "not entitled: polygon answered HTTP 403 NOT_AUTHORIZED: You are not entitled to this data",
            ),
            ("EMPTY", "fmp", "no data"),
            ("EMPTY", "polygon", "no data"),
            (prem, "fmp", "not entitled: fmp answered HTTP 402"),
            ("FAIL", "fmp", "fmp answered HTTP 500"),
            ("TRUNC", "fmp", "unreadable response: the body ends early"),
        ] {
            assert!(
                failures
                    .iter()
                    .any(|(s, p, e)| s == symbol && p == provider && e.starts_with(reason)),
                "{symbol} {provider} {reason} at {at}: {failures:?}"
            );
        }
        let stored = record["failures"].to_string();
        assert!(
            stored.contains(&format!("\"symbol\":\"{unent}\"")),
            "{stored}"
        );
        assert!(
            !failures.iter().any(|(_, _, e)| e.starts_with("not asked")),
            "a provider was switched off at {at}: {failures:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_key_stops_that_provider_and_sends_the_rest_to_the_other() {
    let invalid_fmp_key = r#"{"Error Message": "Invalid API KEY. Please retry or visit our documentation to create one FREE https://financialmodelingprep.com/developer/docs"}"#;
    let unknown_polygon_key = r#"{"status":"ERROR","request_id":"k","error":"Unknown API Key"}"#;
    for primary in [Provider::Fmp, Provider::Polygon] {
        // Arrange: the primary refuses the key, the other serves every ticker.
        let database = migrated_database().await;
        let fmp = MockServer::start().await;
        let polygon = MockServer::start().await;
        let symbols = ["AAPL", "MSFT", "SPY"];
        match primary {
            Provider::Fmp => {
                Mock::given(path(FMP_PATH))
                    .respond_with(
                        ResponseTemplate::new(401)
                            .set_body_raw(invalid_fmp_key, "application/json"),
                    )
                    .mount(&fmp)
                    .await;
                for symbol in symbols {
                    polygon_serves(&polygon, symbol, json_body(polygon_aggregates(symbol))).await;
                }
            }
            Provider::Polygon => {
                Mock::given(path_regex("^/v2/aggs/"))
                    .respond_with(
                        ResponseTemplate::new(401)
                            .set_body_raw(unknown_polygon_key, "application/json"),
                    )
                    .mount(&polygon)
                    .await;
                for symbol in symbols {
                    fmp_serves(&fmp, symbol, json_body(fmp_body(symbol, &DAYS))).await;
                }
            }
        }
        let config = etl_config(&database, &fmp, Some(&polygon), |f| f);
        let mut options = options(noon());
        options.concurrency = 1;
        let mut req = request(Dates::Range(d(DAYS[0]), d(DAYS[5])), &symbols);
        req.provider = Some(primary);

        // Act
        let outcome = etl::run(&config, req, options, std::future::pending())
            .await
            .unwrap();

        // Assert: one request to the refusing provider, every ticker from the other.
        assert_eq!(outcome.status(), Status::Succeeded, "{}", outcome.summary());
        let counts = requests(&fmp, &polygon).await;
        let asked_of = |provider: &str| -> u32 {
            counts
                .iter()
                .filter(|((_, p), _)| *p == provider)
                .map(|(_, n)| n)
                .sum()
        };
        assert_eq!(asked_of(primary.as_str()), 1, "{counts:?}");
        assert_eq!(asked_of(primary.other().as_str()), 3, "{counts:?}");
        let sources = sources(&database).await;
        for symbol in symbols {
            assert_eq!(sources[symbol].0, primary.other().as_str(), "{symbol}");
        }
        let failures = failures(&outcome);
        assert!(
            failures[0]
                .2
                .starts_with(&format!("refused: {} answered HTTP 401", primary.as_str())),
            "{failures:?}"
        );
        assert!(
            failures[1..]
                .iter()
                .all(|(_, p, e)| p == primary.as_str() && e.starts_with("not asked: refused")),
            "{failures:?}"
        );
    }
}

/// (symbol, provider, error) of each failure the run recorded.
fn failures(outcome: &Outcome) -> Vec<(String, String, String)> {
    outcome
        .finish
        .failures
        .iter()
        .map(|f| (f.symbol.clone(), f.provider.clone(), f.error.clone()))
        .collect()
}

/// Each stored symbol's source and number of bars.
async fn sources(database: &str) -> BTreeMap<String, (String, usize)> {
    let mut out: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for (symbol, _, _, source) in prices(&mut connect(database).await).await {
        let entry = out.entry(symbol).or_insert((source.clone(), 0));
        assert_eq!(entry.0, source, "one symbol from two providers");
        entry.1 += 1;
    }
    out
}
