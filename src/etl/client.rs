//! HTTP to the providers: a client-side rate limit per provider, a timeout per request, retries
//! with exponential backoff and jitter that honour `Retry-After`, and a deadline for the run.
//!
//! URLs carry FMP's key in the query, so no URL ever reaches a message: errors name the
//! provider and the status, and reqwest's errors are stripped of their URL. What an error
//! answer means (retry, refuse the account, refuse the one request) is decided by
//! [`super::provider::errors`] from its status and the start of its body.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use super::provider::{errors, FetchError, Provider};
use crate::config::Secret;

/// The most of an error answer's body read: providers explain themselves in a sentence, and a
/// proxy's error page need not be read to the end.
const MAX_ERROR_BODY: usize = 4096;

/// How failed requests are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff; each retry doubles it (before jitter).
    pub base_delay: Duration,
    /// The longest backoff between two attempts.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// `max_retries` retries starting at half a second, at most 30 s apart.
    pub fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }

    /// The pause before retry number `retry` (from 0): `base * 2^retry`, capped, with "equal
    /// jitter" (a random half added to a fixed half) so that clients retrying together spread out.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1 << retry.min(16))
            .min(self.max_delay);
        let half = exp / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Spaces requests evenly: at most `per_minute` a minute, no bursts. Shared by every task that
/// talks to the same provider.
#[derive(Debug, Clone)]
pub struct RateLimit {
    interval: Duration,
    next: Arc<Mutex<Instant>>,
}

impl RateLimit {
    /// A limit of `per_minute` requests a minute.
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            interval: Duration::from_secs(60) / per_minute.max(1),
            next: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Waits for the next free slot and takes it.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Pushes the next slot back to at least `until` (after a 429 with `Retry-After`, every
    /// task waits, not only the one that was told).
    pub async fn hold_until(&self, until: Instant) {
        let mut next = self.next.lock().await;
        *next = (*next).max(until);
    }
}

/// One provider's HTTP client.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    provider: Provider,
    bearer: Option<Secret>,
    limit: RateLimit,
    retry: RetryPolicy,
    timeout: Duration,
    deadline: Instant,
}

impl Client {
    /// A client for `provider`, sending `bearer` as an `Authorization` header when given.
    pub fn new(
        http: reqwest::Client,
        provider: Provider,
        bearer: Option<Secret>,
        limit: RateLimit,
        retry: RetryPolicy,
        timeout: Duration,
        deadline: Instant,
    ) -> Self {
        Self {
            http,
            provider,
            bearer,
            limit,
            retry,
            timeout,
            deadline,
        }
    }

    /// GETs `url` and hands the body to `parse`, retrying transient failures, whether they are
    /// HTTP statuses, network errors, or errors `parse` reports from a 200 body.
    pub async fn get<T>(
        &self,
        url: &Url,
        parse: impl Fn(&[u8]) -> Result<T, FetchError>,
    ) -> Result<T, FetchError> {
        let mut retry = 0;
        loop {
            let (error, retry_after) = match self.attempt(url).await {
                Ok(body) => match parse(&body) {
                    Ok(value) => return Ok(value),
                    Err(error) => (error, None),
                },
                Err((error, retry_after)) => (error, retry_after),
            };
            if !error.is_transient() || retry >= self.retry.max_retries {
                return Err(error);
            }
            let mut pause = self.retry.backoff(retry);
            if let Some(after) = retry_after {
                pause = pause.max(after);
                self.limit.hold_until(Instant::now() + after).await;
            }
            if Instant::now() + pause >= self.deadline {
                return Err(FetchError::Deadline);
            }
            tracing::warn!(
                provider = self.provider.as_str(),
                error = %error,
                retry = retry + 1,
                of = self.retry.max_retries,
                pause_ms = pause.as_millis() as u64,
                "transient provider error; retrying"
            );
            tokio::time::sleep(pause).await;
            retry += 1;
        }
    }

    async fn attempt(&self, url: &Url) -> Result<Vec<u8>, (FetchError, Option<Duration>)> {
        self.limit.acquire().await;
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err((FetchError::Deadline, None));
        }
        let mut request = self
            .http
            .get(url.clone())
            .timeout(self.timeout.min(remaining));
        if let Some(token) = &self.bearer {
            request = request.header(AUTHORIZATION, bearer(token)?);
        }
        let response = request.send().await.map_err(|e| (self.network(e), None))?;
        let status = response.status();
        if status.is_success() {
            return match response.bytes().await {
                Ok(body) => Ok(body.to_vec()),
                Err(e) => Err((self.network(e), None)),
            };
        }
        let retry_after = retry_after(response.headers());
        let body = error_body(response).await;
        Err((
            errors::answer(self.provider, status.as_u16(), &body),
            retry_after,
        ))
    }

    /// A network error as a transient failure, its URL (and so any key) removed.
    fn network(&self, error: reqwest::Error) -> FetchError {
        let kind = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "could not connect"
        } else if error.is_body() || error.is_decode() {
            "the connection broke while reading the body"
        } else {
            "the request failed"
        };
        let cause = super::redact::error_chain(&error.without_url());
        FetchError::Transient(format!("{}: {kind} ({cause})", self.provider.as_str()))
    }
}

/// The first [`MAX_ERROR_BODY`] bytes of an error answer's body; what could not be read is
/// left out (the status still says something).
async fn error_body(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_ERROR_BODY);
    body
}

/// The `Authorization` value for `token`, marked sensitive so that no `Debug` of the request
/// shows it. The config refuses keys that are not visible ASCII, so this fails only if that
/// check is bypassed, and then without quoting the key.
fn bearer(token: &Secret) -> Result<HeaderValue, (FetchError, Option<Duration>)> {
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose())).map_err(|_| {
        (
            FetchError::Refused("the API key cannot be sent in a header".to_owned()),
            None,
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `Retry-After` in seconds (the form providers send); an HTTP date is ignored, the backoff
/// applies instead. Capped at ten minutes so a confused header cannot park the run.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for retry in 0..6 {
            let full = (100u64 << retry).min(1000);
            let pause = policy.backoff(retry).as_millis() as u64;
            assert!(pause >= full / 2 && pause <= full, "{retry}: {pause}");
        }
    }

    #[test]
    fn retry_after_in_seconds_is_read() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_spaces_requests_evenly() {
        let limit = RateLimit::per_minute(5);
        let start = Instant::now();
        for _ in 0..3 {
            limit.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(24));
    }
}
