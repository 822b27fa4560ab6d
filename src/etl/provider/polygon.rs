//! Polygon (also branded Massive): per-ticker aggregates for backfills and small sets, and the
//! grouped daily endpoint, which answers every US stock for one day in a single request, for
//! daily runs over many symbols under a 5-requests-a-minute plan.
//!
//! Quirks: `t` is the bar's start in epoch milliseconds, dated here in America/New_York (a bar
//! starting at 00:00 New York is 04:00 or 05:00 UTC, and the same instant is the previous day
//! anywhere west of New York); "no data" is HTTP 200 without a `results` key; errors carry
//! `status: "ERROR"` or `"NOT_AUTHORIZED"` with `error` or `message` ([`super::errors`] decides
//! what each means); `next_url` points at the provider's own host, so it is re-based onto the
//! configured base URL (a proxy or a test double) and the key, sent as a bearer header, is never
//! part of it.

use chrono::{DateTime, NaiveDate};
use chrono_tz::America::New_York;
use serde::Deserialize;
use serde_json::Number;
use url::Url;

use super::{errors, malformed, FetchError, RawBar};

/// One page of per-ticker aggregates, or a grouped day.
#[derive(Debug, Default)]
pub struct Page {
    /// The bars on this page.
    pub bars: Vec<RawBar>,
    /// The next page's URL (re-based onto the configured base URL), if any.
    pub next: Option<Url>,
}

/// The per-ticker daily aggregates for `symbol` from `from` to `to`, oldest first.
pub fn aggregates_url(base: &Url, symbol: &str, from: NaiveDate, to: NaiveDate) -> Url {
    let mut url = base.clone();
    url.set_path(&format!(
        "{}/v2/aggs/ticker/{}/range/1/day/{from}/{to}",
        base.path().trim_end_matches('/'),
        urlencode(symbol)
    ));
    url.query_pairs_mut()
        .append_pair("adjusted", "true")
        .append_pair("sort", "asc")
        .append_pair("limit", "50000");
    url
}

/// Every US stock's bar for `date`.
pub fn grouped_url(base: &Url, date: NaiveDate) -> Url {
    let mut url = base.clone();
    url.set_path(&format!(
        "{}/v2/aggs/grouped/locale/us/market/stocks/{date}",
        base.path().trim_end_matches('/')
    ));
    url.query_pairs_mut().append_pair("adjusted", "true");
    url
}

fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

#[derive(Debug, Deserialize)]
struct Response {
    status: Option<String>,
    results: Option<Vec<Bar>>,
    next_url: Option<String>,
    error: Option<String>,
    message: Option<String>,
}

/// One aggregate. `T` is present in grouped results only; `vw` and `n` are not stored.
#[derive(Debug, Deserialize)]
struct Bar {
    #[serde(rename = "T")]
    ticker: Option<String>,
    o: Option<Number>,
    h: Option<Number>,
    l: Option<Number>,
    c: Option<Number>,
    v: Option<Number>,
    t: Option<Number>,
}

/// Reads a Polygon body. `symbol` names the ticker of a per-ticker request; grouped results
/// name their own (`T`). `base` is where `next_url` is re-based.
pub fn parse(symbol: Option<&str>, body: &[u8], base: &Url) -> Result<Page, FetchError> {
    let response: Response = serde_json::from_slice(body).map_err(|e| malformed(&e))?;
    match response.status.as_deref() {
        Some("OK" | "DELAYED") | None => {}
        Some(status) => {
            let detail = response
                .error
                .or(response.message)
                .unwrap_or_else(|| "no detail".to_owned());
            return Err(errors::polygon(200, Some(status), &detail));
        }
    }
    let bars = response
        .results
        .unwrap_or_default()
        .into_iter()
        .filter_map(|bar| raw(symbol, bar))
        .collect();
    let next = response
        .next_url
        .as_deref()
        .map(|next| rebase(next, base))
        .transpose()?;
    Ok(Page { bars, next })
}

/// `next` with its scheme, host and port replaced by `base`'s (path prefix kept), and any
/// `apiKey` parameter dropped: the key goes in the `Authorization` header instead.
fn rebase(next: &str, base: &Url) -> Result<Url, FetchError> {
    let next =
        Url::parse(next).map_err(|_| FetchError::Malformed("next_url is not a URL".to_owned()))?;
    let mut url = base.clone();
    url.set_path(&format!(
        "{}{}",
        base.path().trim_end_matches('/'),
        next.path()
    ));
    let pairs: Vec<(String, String)> = next
        .query_pairs()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("apikey"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    Ok(url)
}

/// `t` (epoch milliseconds) as the New York date of the bar.
pub fn new_york_date(epoch_ms: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp_millis(epoch_ms).map(|t| t.with_timezone(&New_York).date_naive())
}

fn raw(symbol: Option<&str>, bar: Bar) -> Option<RawBar> {
    let symbol = bar.ticker.or_else(|| symbol.map(str::to_owned))?;
    Some(RawBar {
        symbol,
        date: bar.t.and_then(|t| t.as_i64()).and_then(new_york_date),
        open: bar.o,
        high: bar.h,
        low: bar.l,
        close: bar.c,
        adj_close: None,
        volume: bar.v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://127.0.0.1:9").unwrap()
    }

    const AGGS: &str = r#"{"ticker":"AAPL","queryCount":2,"resultsCount":2,"adjusted":true,
      "results":[
        {"v":7.0790813e+07,"vw":235.9,"o":240.01,"c":236.85,"h":240.16,"l":233,"t":1736485200000,"n":812345},
        {"v":37628940,"vw":242.1,"o":241.92,"c":242.7,"h":243.7123,"l":240.05,"t":1736312400000,"n":500000}
      ],
      "status":"OK","request_id":"6a7e466379af0a71039d60cc78e72282",
      "next_url":"https://api.polygon.io/v2/aggs/ticker/AAPL/range/1/day/1736312400000/2025-01-10?cursor=bGltaXQ9Mg&apiKey=leaked"}"#;

    #[test]
    fn aggregates_are_dated_in_new_york_with_exact_prices() {
        let page = parse(Some("AAPL"), AGGS.as_bytes(), &base()).unwrap();
        assert_eq!(page.bars.len(), 2);
        // 1736485200000 is 2025-01-10 05:00 UTC, midnight in New York.
        assert_eq!(page.bars[0].date, Some("2025-01-10".parse().unwrap()));
        assert_eq!(
            page.bars[0].volume.as_ref().map(Number::as_str),
            Some("7.0790813e+07")
        );
        assert_eq!(
            page.bars[1].high.as_ref().map(Number::as_str),
            Some("243.7123")
        );
    }

    #[test]
    fn next_url_is_rebased_and_loses_any_key() {
        let base = Url::parse("http://127.0.0.1:9/polygon").unwrap();
        let page = parse(Some("AAPL"), AGGS.as_bytes(), &base).unwrap();
        let next = page.next.unwrap();
        assert_eq!(
            next.as_str(),
            "http://127.0.0.1:9/polygon/v2/aggs/ticker/AAPL/range/1/day/1736312400000/2025-01-10?cursor=bGltaXQ9Mg"
        );
    }

    #[test]
    fn dates_follow_new_york_across_daylight_saving_changes() {
        // 2025-03-10 04:00 UTC: midnight EDT, Monday 10 March in New York.
        assert_eq!(new_york_date(1_741_579_200_000), "2025-03-10".parse().ok());
        // 2025-03-08 04:30 UTC: still 23:30 EST on Friday 7 March in New York.
        assert_eq!(new_york_date(1_741_408_200_000), "2025-03-07".parse().ok());
        // 2025-11-03 04:30 UTC: 23:30 EST on Sunday 2 November, after the change back.
        assert_eq!(new_york_date(1_762_144_200_000), "2025-11-02".parse().ok());
    }

    #[test]
    fn no_results_key_means_no_data() {
        let body = br#"{"ticker":"NOPE","queryCount":0,"resultsCount":0,"adjusted":true,"status":"OK","request_id":"x"}"#;
        let page = parse(Some("NOPE"), body, &base()).unwrap();
        assert!(page.bars.is_empty() && page.next.is_none());
    }

    #[test]
    fn grouped_results_name_their_tickers() {
        let body = br#"{"queryCount":2,"resultsCount":2,"adjusted":true,"results":[
          {"T":"SPY","v":4.2e7,"vw":590.1,"o":589,"c":591.5,"h":592,"l":588.25,"t":1736542800000,"n":1},
          {"T":"AAPL","v":6.1e7,"vw":235.9,"o":240.01,"c":236.85,"h":240.16,"l":233,"t":1736542800000}
        ],"status":"OK","request_id":"y"}"#;
        let page = parse(None, body, &base()).unwrap();
        let symbols: Vec<&str> = page.bars.iter().map(|b| b.symbol.as_str()).collect();
        assert_eq!(symbols, ["SPY", "AAPL"]);
        assert_eq!(page.bars[0].date, Some("2025-01-10".parse().unwrap()));
    }

    #[test]
    fn error_statuses_are_errors() {
        let unauthorized = br#"{"status":"NOT_AUTHORIZED","request_id":"z","message":"You are not entitled to this data. Please upgrade your plan."}"#;
        assert!(matches!(
            parse(Some("AAPL"), unauthorized, &base()),
            Err(FetchError::NotEntitled(_))
        ));
        let error = br#"{"status":"ERROR","request_id":"z","error":"You've exceeded the maximum requests per minute, please wait or upgrade your subscription to continue."}"#;
        assert!(matches!(
            parse(Some("AAPL"), error, &base()),
            Err(FetchError::Transient(_))
        ));
        let bad =
            br#"{"status":"ERROR","request_id":"z","error":"Could not parse the time parameter"}"#;
        assert!(matches!(
            parse(Some("AAPL"), bad, &base()),
            Err(FetchError::Provider(_))
        ));
    }

    #[test]
    fn truncated_json_is_malformed() {
        let err = parse(Some("AAPL"), &AGGS.as_bytes()[..100], &base()).unwrap_err();
        assert!(matches!(err, FetchError::Malformed(_)), "{err}");
    }
}
