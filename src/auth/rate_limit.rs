//! Login attempt limits in fixed memory: per client address, per email, and how much of an
//! email's limit one address may use.
//!
//! Each limit is a count-min sketch over fixed one-minute windows: `DEPTH` rows of `WIDTH`
//! counters, a key counted in one counter per row (chosen by a hash with a per-process random
//! key, so nobody can aim at a counter) and estimated as the smallest of them. Memory is
//! allocated once, whatever the number of distinct keys; a check touches `DEPTH` counters and
//! never scans. Collisions can only raise an estimate, never lower it: a flood of distinct keys
//! cannot reset anybody's count. With conservative update (only the counters at the estimate
//! are raised) a fresh key is refused by accident only when every one of its counters was
//! driven to the limit by others, which takes tens of thousands of clients a minute, each
//! spending its whole budget.
//!
//! In memory means per replica: with N replicas an attacker gets N times the budget, which still
//! leaves argon2 guessing hopeless at 10 a minute. A shared store would be the next step.

use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Rows of a sketch: a key is refused by accident only if all its counters collide.
const DEPTH: usize = 4;

/// Counters in a row. Four rows of 65,536 four-byte counters are 1 MiB per limit.
const WIDTH: usize = 65_536;

/// At most `limit` attempts per key in each fixed `window`, in fixed memory.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    epoch: Instant,
    hasher: RandomState,
    /// `DEPTH` rows of `WIDTH` counters, each `window index << 16 | count` (the index modulo
    /// 2^16): a counter from an earlier window reads as zero, so windows roll over without a
    /// pass over the table. (A counter untouched for exactly 2^16 windows, 45 days of minutes,
    /// would read as current: an over-count, never an under-count.)
    counters: Mutex<Box<[u32]>>,
}

impl RateLimiter {
    /// A limiter allowing `limit` attempts per key per `window`, windows counted from `epoch`.
    /// `limit` is capped at 65,535, what a counter holds.
    pub fn new(limit: u32, window: Duration, epoch: Instant) -> Self {
        Self {
            limit: limit.min(0xffff),
            window,
            epoch,
            hasher: RandomState::new(),
            // Zeroed, so the pages stay untouched (and not resident) until keys land on them.
            counters: Mutex::new(vec![0; DEPTH * WIDTH].into_boxed_slice()),
        }
    }

    /// Counts an attempt for `key`: `Ok` if it is within the limit, else `Err` with the time
    /// until the window ends (for `Retry-After`), and the attempt is not counted.
    pub fn check(&self, key: &impl Hash, now: Instant) -> Result<(), Duration> {
        self.estimate(key, now, true)
    }

    /// Whether `key` is within the limit, without counting an attempt.
    pub fn peek(&self, key: &impl Hash, now: Instant) -> Result<(), Duration> {
        self.estimate(key, now, false)
    }

    /// The memory the counters hold, in bytes: fixed at construction.
    pub fn memory_bytes(&self) -> usize {
        DEPTH * WIDTH * std::mem::size_of::<u32>()
    }

    fn estimate(&self, key: &impl Hash, now: Instant, count: bool) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.epoch);
        let window_nanos = self.window.as_nanos().max(1);
        let window = (elapsed.as_nanos() / window_nanos) as u32 & 0xffff;
        let slots = slots(self.hasher.hash_one(key));
        // A poisoned lock only means another request panicked mid-update; the counts are
        // still usable.
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let current = |cell: u32| -> u32 {
            if cell >> 16 == window {
                cell & 0xffff
            } else {
                0
            }
        };
        let estimate = slots
            .iter()
            .map(|&i| current(counters[i]))
            .min()
            .unwrap_or(0);
        if estimate >= self.limit {
            let into_window = (elapsed.as_nanos() % window_nanos) as u64;
            return Err(self
                .window
                .saturating_sub(Duration::from_nanos(into_window)));
        }
        if count {
            for &i in &slots {
                if current(counters[i]) == estimate {
                    counters[i] = window << 16 | (estimate + 1);
                }
            }
        }
        Ok(())
    }
}

/// The key's counter in each row, from one 64-bit hash by double hashing.
fn slots(hash: u64) -> [usize; DEPTH] {
    let (h1, h2) = (hash as u32 as usize, (hash >> 32) as usize | 1);
    std::array::from_fn(|row| row * WIDTH + h1.wrapping_add(row.wrapping_mul(h2)) % WIDTH)
}

/// Login attempts allowed per email, and per client address, each minute.
pub const LOGIN_ATTEMPTS_PER_MINUTE: u32 = 10;

/// How many of an email's attempts in a minute one client address may use: fewer than the
/// limit, so that locking somebody's account takes several addresses, never one.
pub const EMAIL_ATTEMPTS_PER_CLIENT: u32 = 3;

/// The limits a login passes: per client address (trying many accounts from one place), and per
/// email (guessing one account's password from many places), to which one address contributes
/// at most [`EMAIL_ATTEMPTS_PER_CLIENT`] attempts a minute.
#[derive(Debug)]
pub struct LoginLimits {
    per_client: RateLimiter,
    per_email: RateLimiter,
    email_share_per_client: RateLimiter,
    refused: AtomicU64,
}

impl LoginLimits {
    /// The limits, with windows of `window` (a minute in production) counted from `epoch`.
    pub fn new(window: Duration, epoch: Instant) -> Self {
        Self {
            per_client: RateLimiter::new(LOGIN_ATTEMPTS_PER_MINUTE, window, epoch),
            per_email: RateLimiter::new(LOGIN_ATTEMPTS_PER_MINUTE, window, epoch),
            email_share_per_client: RateLimiter::new(EMAIL_ATTEMPTS_PER_CLIENT, window, epoch),
            refused: AtomicU64::new(0),
        }
    }

    /// Counts a login attempt from `client` for `email` (normalized: trimmed, lower-cased):
    /// `Err` with the time to wait if either limit is spent. Past its share of the email's
    /// limit, a client's attempts still count against the client but no longer against the
    /// email: they are refused by the client's own limit soon enough.
    pub fn check(&self, client: IpAddr, email: &str, now: Instant) -> Result<(), Duration> {
        let outcome = self.per_client.check(&client, now).and_then(|()| {
            if self
                .email_share_per_client
                .check(&(email, client), now)
                .is_ok()
            {
                self.per_email.check(&email, now)
            } else {
                self.per_email.peek(&email, now)
            }
        });
        if outcome.is_err() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    /// How many attempts [`check`](Self::check) has refused since start-up (for the metrics).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The memory the three limits hold, in bytes: fixed at construction.
    pub fn memory_bytes(&self) -> usize {
        self.per_client.memory_bytes()
            + self.per_email.memory_bytes()
            + self.email_share_per_client.memory_bytes()
    }
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self::new(Duration::from_secs(60), Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(i: u32) -> IpAddr {
        IpAddr::from(i.to_be_bytes())
    }

    #[test]
    fn the_limit_holds_per_key_until_the_window_ends() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(2, Duration::from_secs(60), t0);
        assert!(limiter.check(&"a", t0).is_ok());
        assert!(limiter.check(&"a", t0).is_ok());
        let wait = limiter
            .check(&"a", t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(limiter.peek(&"a", t0).is_err());
        assert!(limiter.check(&"b", t0).is_ok());
        assert!(limiter.check(&"a", t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn peeking_counts_nothing() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(1, Duration::from_secs(60), t0);
        for _ in 0..5 {
            assert!(limiter.peek(&"a", t0).is_ok());
        }
        assert!(limiter.check(&"a", t0).is_ok());
        assert!(limiter.check(&"a", t0).is_err());
    }

    #[test]
    fn a_flood_of_distinct_keys_neither_frees_a_spent_key_nor_refuses_a_fresh_one() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(10, Duration::from_secs(60), t0);
        for _ in 0..10 {
            limiter.check(&"victim", t0).unwrap();
        }
        for i in 0..100_000u32 {
            let _ = limiter.check(&address(i), t0);
        }
        assert!(
            limiter.check(&"victim", t0).is_err(),
            "a spent key was freed"
        );
        let refused = (0..1000)
            .filter(|i| limiter.check(&format!("fresh-{i}"), t0).is_err())
            .count();
        assert_eq!(refused, 0, "fresh keys refused after 100k distinct keys");
    }

    #[test]
    fn one_address_cannot_lock_somebody_elses_account() {
        let t0 = Instant::now();
        let limits = LoginLimits::new(Duration::from_secs(60), t0);
        let attacker = address(1);
        let owner = address(2);
        for _ in 0..LOGIN_ATTEMPTS_PER_MINUTE {
            limits.check(attacker, "victim@example.com", t0).unwrap();
        }
        assert!(limits.check(attacker, "victim@example.com", t0).is_err());
        assert!(
            limits.check(owner, "victim@example.com", t0).is_ok(),
            "one address locked the account for everybody"
        );
    }

    #[test]
    fn attempts_from_several_addresses_still_lock_an_email() {
        let t0 = Instant::now();
        let limits = LoginLimits::new(Duration::from_secs(60), t0);
        let mut allowed = 0;
        for i in 0..20 {
            if limits.check(address(i), "target@example.com", t0).is_ok() {
                allowed += 1;
            }
        }
        assert_eq!(allowed, LOGIN_ATTEMPTS_PER_MINUTE);
        let wait = limits
            .check(
                address(99),
                "target@example.com",
                t0 + Duration::from_secs(15),
            )
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(45));
        assert!(limits
            .check(
                address(99),
                "target@example.com",
                t0 + Duration::from_secs(60)
            )
            .is_ok());
    }
}
