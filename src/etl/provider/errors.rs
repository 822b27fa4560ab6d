//! What a provider's error answer means for the run, decided in one place for both providers:
//! a refusal of the account (the key, the plan's quota, an endpoint the plan lacks) stops every
//! further request to that provider during the run; a refusal of the one thing asked for (a
//! ticker or a timeframe outside the plan) fails that symbol at that provider, which keeps
//! serving the others, and the other provider may still be asked for it; a rate limit, a
//! timeout or a server error is retried; anything else fails the request without a retry.
//!
//! The providers' answers, as they write them (statuses and messages quoted):
//!
//! - **FMP** puts its reason in `{"Error Message": "..."}`: HTTP 401 "Invalid API KEY. Please
//!   retry or visit our documentation to create one FREE" for a missing or unknown key (older
//!   answers sent it with HTTP 200); HTTP 402 "Premium Query Parameter: 'Special Endpoint : This
//!   value set for 'symbol' is not available under your current subscription" for a ticker
//!   outside the plan, while other tickers answer 200; HTTP 402 "Restricted Endpoint: This
//!   endpoint is not available under your current subscription" and HTTP 403 "Legacy Endpoint"
//!   for an endpoint the key may not call, whatever the ticker; HTTP 429 (or 200) "Limit Reach .
//!   Please upgrade your plan", without `Retry-After`, once the plan's quota is used up.
//! - **Polygon** (Massive) answers `{"status": .., "request_id": .., "error" | "message": ..}`:
//!   `"status": "ERROR"` with "Unknown API Key" (HTTP 401) or "API Key was not provided" for the
//!   key; HTTP 403 with `"status": "NOT_AUTHORIZED"` and "You are not entitled to this
//!   data", "Your plan doesn't include this data timeframe" or "Attempted to request today's
//!   data before end of day" for data the plan lacks, a statement about the request (the same key
//!   is served other tickers and other days); HTTP 429 with `"status": "ERROR"` and "You've
//!   exceeded the maximum requests per minute" for the per-minute limit.
//!
//! A refusal neither list names (a 402 or 403 with another message) is taken as a refusal of the
//! request, because the two mistakes cost differently: taking an account refusal for a ticker's
//! costs one request per remaining symbol, each refused at once and never retried, whereas
//! taking a ticker's refusal for the account's loses every symbol not yet fetched. A 401 is
//! always the key's.

use super::{FetchError, Provider};
use serde::Deserialize;

/// The most of a provider's message kept in an error (its bodies are short; a proxy's may not be).
const MAX_MESSAGE_CHARS: usize = 200;

/// The error an answer with HTTP `status` and `body` stands for (`status` is 200 for an error
/// reported inside a successful answer).
pub fn answer(provider: Provider, status: u16, body: &[u8]) -> FetchError {
    match provider {
        Provider::Fmp => fmp(status, &fmp_message(body)),
        Provider::Polygon => {
            let (word, message) = polygon_message(body);
            polygon(status, word.as_deref(), &message)
        }
    }
}

/// FMP's answer: HTTP `status` and its `Error Message` (or body text).
pub fn fmp(status: u16, message: &str) -> FetchError {
    let lower = message.to_ascii_lowercase();
    let text = describe(Provider::Fmp, status, None, message);
    if status == 401 || lower.contains("api key") || lower.contains("apikey") {
        FetchError::Refused(text)
    } else if lower.contains("limit reach") {
        // The plan's quota (daily or bandwidth): it comes back hours later, not within a run.
        FetchError::Refused(text)
    } else if lower.contains("restricted endpoint") || lower.contains("legacy endpoint") {
        // The endpoint itself is outside the plan: every ticker would get the same answer.
        FetchError::Refused(text)
    } else {
        by_status(status, text)
    }
}

/// Polygon's answer: HTTP `status`, the body's `status` word and its `error` or `message`.
pub fn polygon(status: u16, word: Option<&str>, message: &str) -> FetchError {
    let lower = message.to_ascii_lowercase();
    let text = describe(Provider::Polygon, status, word, message);
    if status == 401 || lower.contains("api key") {
        FetchError::Refused(text)
    } else if status == 429 || lower.contains("maximum requests") {
        // The per-minute limit, sometimes reported in a 200 body: waiting helps.
        FetchError::Transient(text)
    } else if word == Some("NOT_AUTHORIZED") {
        FetchError::NotEntitled(text)
    } else {
        by_status(status, text)
    }
}

/// What the status alone says, once the message has said nothing more specific.
fn by_status(status: u16, text: String) -> FetchError {
    match status {
        402 | 403 => FetchError::NotEntitled(text),
        408 | 425 | 429 | 500..=599 => FetchError::Transient(text),
        _ => FetchError::Provider(text),
    }
}

/// One line: who answered, how, and what they said (shortened, any key masked).
fn describe(provider: Provider, status: u16, word: Option<&str>, message: &str) -> String {
    let message: String = message.trim().chars().take(MAX_MESSAGE_CHARS).collect();
    let mut text = if status == 200 {
        // An error inside a successful answer: the provider's own words say it.
        match provider {
            Provider::Fmp => "FMP".to_owned(),
            Provider::Polygon => "Polygon".to_owned(),
        }
    } else {
        format!("{} answered HTTP {status}", provider.as_str())
    };
    if let Some(word) = word {
        text.push(' ');
        text.push_str(word);
    }
    if !message.is_empty() {
        text.push_str(": ");
        text.push_str(&message);
    }
    crate::etl::redact::redact(&text)
}

#[derive(Deserialize)]
struct FmpError {
    #[serde(rename = "Error Message")]
    error_message: Option<String>,
}

/// FMP's `Error Message`, or the body as text when it is not that JSON.
fn fmp_message(body: &[u8]) -> String {
    match serde_json::from_slice::<FmpError>(body) {
        Ok(FmpError {
            error_message: Some(message),
        }) => message,
        _ => String::from_utf8_lossy(body).into_owned(),
    }
}

#[derive(Deserialize)]
struct PolygonError {
    status: Option<String>,
    error: Option<String>,
    message: Option<String>,
}

/// Polygon's `status` word and its `error` (or `message`), or the body as text.
fn polygon_message(body: &[u8]) -> (Option<String>, String) {
    match serde_json::from_slice::<PolygonError>(body) {
        Ok(error) => (
            error.status,
            error.error.or(error.message).unwrap_or_default(),
        ),
        Err(_) => (None, String::from_utf8_lossy(body).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(error: &FetchError) -> &'static str {
        match error {
            FetchError::Refused(_) => "account",
            FetchError::NotEntitled(_) => "request",
            FetchError::Transient(_) => "retry",
            FetchError::Provider(_) => "other",
            FetchError::Malformed(_) => "malformed",
            FetchError::Deadline => "deadline",
        }
    }

    fn fmp_kind(status: u16, body: &str) -> &'static str {
        kind(&answer(Provider::Fmp, status, body.as_bytes()))
    }

    fn polygon_kind(status: u16, body: &str) -> &'static str {
        kind(&answer(Provider::Polygon, status, body.as_bytes()))
    }

    #[test]
    fn fmp_refuses_the_account_for_the_key_the_quota_and_an_endpoint_outside_the_plan() {
        for (status, body) in [
            (
                401,
                r#"{"Error Message": "Invalid API KEY. Please retry or visit our documentation to create one FREE https://financialmodelingprep.com/developer/docs"}"#,
            ),
            (200, r#"{"Error Message": "Invalid API KEY. Please retry"}"#),
            (401, ""),
            (
                429,
                r#"{"Error Message": "Limit Reach . Please upgrade your plan or visit our documentation for more details at https://site.financialmodelingprep.com/"}"#,
            ),
            (
                200,
                r#"{"Error Message": "Limit Reach . Please upgrade your plan"}"#,
            ),
            (
                402,
                r#"{"Error Message": "Restricted Endpoint: This endpoint is not available under your current subscription"}"#,
            ),
            (
                403,
                r#"{"Error Message": "Legacy Endpoint : Due to Legacy endpoints being no longer supported"}"#,
            ),
        ] {
            assert_eq!(fmp_kind(status, body), "account", "{status} {body}");
        }
    }

    #[test]
    fn fmp_refuses_one_ticker_for_a_symbol_outside_the_plan_or_an_unexplained_402_or_403() {
        for (status, body) in [
            (
                402,
                r#"{"Error Message": "Premium Query Parameter: 'Special Endpoint : This value set for 'symbol' is not available under your current subscription please visit our subscription page to upgrade your plan at https://site.financialmodelingprep.com/developer/docs/pricing"}"#,
            ),
            (402, "Premium Query Parameter"),
            (402, ""),
            (403, "<html>Forbidden</html>"),
        ] {
            assert_eq!(fmp_kind(status, body), "request", "{status} {body}");
        }
    }

    #[test]
    fn fmp_rate_limits_and_server_errors_are_retried_and_the_rest_is_not() {
        assert_eq!(fmp_kind(429, ""), "retry");
        assert_eq!(fmp_kind(503, "<html>Bad gateway</html>"), "retry");
        assert_eq!(fmp_kind(404, ""), "other");
        assert_eq!(
            fmp_kind(200, r#"{"Error Message": "Invalid parameters"}"#),
            "other"
        );
    }

    #[test]
    fn polygon_refuses_the_account_only_for_the_key() {
        for (status, body) in [
            (
                401,
                r#"{"status":"ERROR","request_id":"a","error":"Unknown API Key"}"#,
            ),
            (
                401,
                r#"{"status":"ERROR","request_id":"a","error":"API Key was not provided"}"#,
            ),
            (401, ""),
            (
                403,
                r#"{"status":"NOT_AUTHORIZED","request_id":"a","message":"Invalid API key."}"#,
            ),
        ] {
            assert_eq!(polygon_kind(status, body), "account", "{status} {body}");
        }
    }

    #[test]
    fn polygon_not_authorized_for_data_refuses_that_request_only() {
        for (status, body) in [
            (
                403,
                r#"{"status":"NOT_AUTHORIZED","request_id":"a","message":"You are not entitled to this data. Please upgrade your plan at https://massive.com/pricing"}"#,
            ),
            (
                403,
                r#"{"status":"NOT_AUTHORIZED","request_id":"a","message":"Your plan doesn't include this data timeframe. Please upgrade your plan at https://polygon.io/pricing"}"#,
            ),
            (
                200,
                r#"{"status":"NOT_AUTHORIZED","request_id":"a","message":"Attempted to request today's data before end of day. Please upgrade your plan at https://polygon.io/pricing"}"#,
            ),
            (403, ""),
        ] {
            assert_eq!(polygon_kind(status, body), "request", "{status} {body}");
        }
    }

    #[test]
    fn polygon_per_minute_limits_are_retried_wherever_they_are_reported() {
        let body = r#"{"status":"ERROR","request_id":"a","error":"You've exceeded the maximum requests per minute, please wait or upgrade your subscription to continue. https://polygon.io/pricing"}"#;
        assert_eq!(polygon_kind(429, body), "retry");
        assert_eq!(polygon_kind(200, body), "retry");
        assert_eq!(
            polygon_kind(
                200,
                r#"{"status":"ERROR","request_id":"b","error":"Could not find ticker"}"#
            ),
            "other"
        );
    }

    #[test]
    fn the_text_names_the_provider_the_status_and_the_message_with_keys_masked() {
        let error = answer(
            Provider::Polygon,
            403,
            br#"{"status":"NOT_AUTHORIZED","message":"You are not entitled to this data."}"#,
        );
        assert_eq!(
            error.to_string(),
            "not entitled: polygon answered HTTP 403 NOT_AUTHORIZED: You are not entitled to this data."
        );
        let error = answer(Provider::Fmp, 401, b"bad key apikey=s3cret");
        assert_eq!(
            error.to_string(),
            "refused: fmp answered HTTP 401: bad key apikey=****"
        );
    }
}
