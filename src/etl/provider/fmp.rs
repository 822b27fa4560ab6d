//! Financial Modeling Prep: `/stable/historical-price-eod/full?symbol=&from=&to=&apikey=`.
//!
//! Quirks: the key travels in the query (`apikey=`), so URLs are never logged; the stable
//! endpoint answers a flat array, newest first, while the legacy `/api/v3/historical-price-full`
//! wraps it as `{"symbol": .., "historical": [..]}`, and sources disagree on which one the
//! stable path returns, so both are read; an unknown symbol is HTTP 200 with `[]` (or `{}`);
//! errors are `{"Error Message": ..}`, sometimes with HTTP 200 (the daily "Limit Reach"), and
//! [`super::errors`] decides what each means.

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::Number;
use url::Url;

use super::{errors, first_byte, malformed, FetchError, RawBar};
use crate::config::Secret;

/// The request URL for `symbol`'s bars from `from` to `to`. It contains the key: hand it to
/// the HTTP client only.
pub fn url(base: &Url, key: &Secret, symbol: &str, from: NaiveDate, to: NaiveDate) -> Url {
    let mut url = base.clone();
    url.set_path(&join(base.path(), "stable/historical-price-eod/full"));
    url.query_pairs_mut()
        .append_pair("symbol", symbol)
        .append_pair("from", &from.to_string())
        .append_pair("to", &to.to_string())
        .append_pair("apikey", key.expose());
    url
}

/// `base`'s path (a proxy may mount FMP under one) and `rest`, with one slash between.
fn join(base: &str, rest: &str) -> String {
    format!("{}/{rest}", base.trim_end_matches('/'))
}

/// One element of FMP's array. Unknown fields (change, vwap, ...) are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bar {
    date: Option<String>,
    open: Option<Number>,
    high: Option<Number>,
    low: Option<Number>,
    close: Option<Number>,
    adj_close: Option<Number>,
    volume: Option<Number>,
}

/// The object form: the legacy wrapper, an empty `{}`, or an error.
#[derive(Debug, Deserialize)]
struct Object {
    #[serde(rename = "Error Message")]
    error_message: Option<String>,
    historical: Option<Vec<Bar>>,
}

/// Reads an FMP body for `symbol`: its bars (possibly none), or the error it reports.
pub fn parse(symbol: &str, body: &[u8]) -> Result<Vec<RawBar>, FetchError> {
    let bars: Vec<Bar> = match first_byte(body) {
        Some(b'[') => serde_json::from_slice(body).map_err(|e| malformed(&e))?,
        Some(b'{') => {
            let object: Object = serde_json::from_slice(body).map_err(|e| malformed(&e))?;
            if let Some(message) = object.error_message {
                return Err(errors::fmp(200, &message));
            }
            object.historical.unwrap_or_default()
        }
        _ => {
            return Err(FetchError::Malformed(
                "the body is neither a JSON array nor an object".to_owned(),
            ))
        }
    };
    Ok(bars.into_iter().map(|bar| raw(symbol, bar)).collect())
}

fn raw(symbol: &str, bar: Bar) -> RawBar {
    RawBar {
        symbol: symbol.to_owned(),
        date: bar.date.as_deref().and_then(|d| d.parse().ok()),
        open: bar.open,
        high: bar.high,
        low: bar.low,
        close: bar.close,
        adj_close: bar.adj_close,
        volume: bar.volume,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(number: &Option<Number>) -> Option<&str> {
        number.as_ref().map(Number::as_str)
    }

    const STABLE: &str = r#"[
      {"symbol":"AAPL","date":"2025-01-10","open":240.01,"high":240.16,"low":233.0,"close":236.85,
       "volume":61710900,"change":-3.16,"changePercent":-1.32,"vwap":237.5},
      {"symbol":"AAPL","date":"2025-01-08","open":241.92,"high":243.7123,"low":240.05,"close":242.7,
       "volume":37628940,"change":0.78,"changePercent":0.32,"vwap":242.09}
    ]"#;

    const LEGACY: &str = r#"{"symbol":"AAPL","historical":[
      {"date":"2025-01-10","open":240.01,"high":240.16,"low":233.0,"close":236.85,
       "adjClose":236.5923,"volume":61710900,"unadjustedVolume":61710900}
    ]}"#;

    #[test]
    fn the_stable_flat_array_is_read_with_exact_prices() {
        let bars = parse("AAPL", STABLE.as_bytes()).unwrap();
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[1].date, Some("2025-01-08".parse().unwrap()));
        assert_eq!(text(&bars[1].high), Some("243.7123"));
        assert_eq!(bars[0].adj_close, None);
        assert_eq!(text(&bars[0].volume), Some("61710900"));
    }

    #[test]
    fn the_legacy_wrapper_is_read_with_its_adjusted_close() {
        let bars = parse("AAPL", LEGACY.as_bytes()).unwrap();
        assert_eq!(bars.len(), 1);
        assert_eq!(text(&bars[0].adj_close), Some("236.5923"));
    }

    #[test]
    fn numbers_keep_the_text_the_provider_wrote() {
        let body = br#"[{"date":"2025-01-10","open":1.10,"high":187.44250000000001,"low":1E-7,
          "close":1.1234567,"volume":7.0790813e+07}]"#;
        let bars = parse("AAPL", body).unwrap();
        let bar = &bars[0];
        assert_eq!(
            [&bar.open, &bar.high, &bar.low, &bar.close, &bar.volume].map(text),
            [
                Some("1.10"),
                Some("187.44250000000001"),
                // serde_json writes the exponent's letter in lower case; the digits are kept.
                Some("1e-7"),
                Some("1.1234567"),
                Some("7.0790813e+07")
            ]
        );
    }

    #[test]
    fn an_unknown_symbol_is_an_empty_array_or_object() {
        assert!(parse("NOPE", b"[]").unwrap().is_empty());
        assert!(parse("NOPE", b" {} ").unwrap().is_empty());
    }

    #[test]
    fn error_messages_are_errors_and_the_daily_limit_refuses_further_requests() {
        let limit = br#"{"Error Message": "Limit Reach . Please upgrade your plan or visit our documentation for more details at https://site.financialmodelingprep.com/"}"#;
        assert!(matches!(parse("AAPL", limit), Err(FetchError::Refused(_))));
        let other = br#"{"Error Message": "Invalid parameters"}"#;
        assert!(matches!(parse("AAPL", other), Err(FetchError::Provider(_))));
    }

    #[test]
    fn malformed_and_truncated_bodies_are_malformed() {
        let truncated = &STABLE.as_bytes()[..STABLE.len() / 2];
        let err = parse("AAPL", truncated).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(matches!(
            parse("AAPL", b"<html>502</html>"),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse("AAPL", br#"[{"date": 5}]"#),
            Err(FetchError::Malformed(_))
        ));
    }

    #[test]
    fn the_url_carries_the_range_and_key_under_the_base_path() {
        let base = Url::parse("http://127.0.0.1:9/proxy/").unwrap();
        let key = Secret::new("k");
        let from = "2025-01-02".parse().unwrap();
        let to = "2025-01-10".parse().unwrap();
        let url = url(&base, &key, "BRK.B", from, to);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/proxy/stable/historical-price-eod/full?symbol=BRK.B&from=2025-01-02&to=2025-01-10&apikey=k"
        );
    }
}
