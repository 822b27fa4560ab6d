//! A fixed-window rate limiter in memory, for login attempts (per email and per client address).
//!
//! In memory means per replica: with N replicas an attacker gets N times the budget, which still
//! leaves argon2 guessing hopeless at 10 a minute. A shared store would be the next step.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Past this many keys, expired windows are dropped on the next check, so a flood of distinct
/// keys cannot grow the map without bound.
const PRUNE_AT: usize = 10_000;

/// At most `limit` attempts per key in each `window`.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    /// A limiter allowing `limit` attempts per key per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt for `key`: `Ok` if it is within the limit, else `Err` with the time
    /// until the window ends (for `Retry-After`).
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        // A poisoned lock only means another request panicked mid-update; the counts are
        // still usable.
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= PRUNE_AT {
            let window = self.window;
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return Err(self.window.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// Login attempts allowed per email, and per client address, each minute.
pub const LOGIN_ATTEMPTS_PER_MINUTE: u32 = 10;

/// The two limits a login passes: one per email (guessing one account's password from many
/// addresses) and one per client address (trying many accounts from one place).
#[derive(Debug)]
pub struct LoginLimits {
    /// Keyed by the lower-cased email.
    pub per_email: RateLimiter,
    /// Keyed by the client address.
    pub per_client: RateLimiter,
}

impl Default for LoginLimits {
    fn default() -> Self {
        let minute = Duration::from_secs(60);
        Self {
            per_email: RateLimiter::new(LOGIN_ATTEMPTS_PER_MINUTE, minute),
            per_client: RateLimiter::new(LOGIN_ATTEMPTS_PER_MINUTE, minute),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_holds_per_key_until_the_window_ends() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(limiter.check("a", t0).is_ok());
        assert!(limiter.check("a", t0).is_ok());
        let wait = limiter
            .check("a", t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(limiter.check("b", t0).is_ok());
        assert!(limiter.check("a", t0 + Duration::from_secs(60)).is_ok());
    }
}
