//! Password verification with bounded cost: at most `PASSWORD_HASH_CONCURRENCY` argon2id
//! verifications at once (19 MiB and tens of milliseconds of one core each), and at most
//! `PASSWORD_HASH_QUEUE` more waiting for a turn. A login that finds the queue full is turned
//! away at once (503 with `Retry-After`) rather than waiting, or asking Tokio's blocking pool
//! (512 threads) for gigabytes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::password;

/// The verifications running and waiting.
#[derive(Debug)]
pub struct Verifier {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    concurrency: usize,
    capacity: usize,
    turned_away: AtomicU64,
}

/// A login's place among the admitted ones: held until its verification is done.
#[derive(Debug)]
pub struct Admission {
    running: Arc<Semaphore>,
    place: OwnedSemaphorePermit,
}

impl Verifier {
    /// `concurrency` verifications at once (at least one), `queue` more waiting.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
            concurrency,
            capacity: concurrency + queue,
            turned_away: AtomicU64::new(0),
        }
    }

    /// A place for one verification, or `None` when as many are running and waiting as
    /// allowed.
    pub fn admit(&self) -> Option<Admission> {
        let Ok(place) = Arc::clone(&self.admitted).try_acquire_owned() else {
            self.turned_away.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        Some(Admission {
            running: Arc::clone(&self.running),
            place,
        })
    }

    /// Verifications running now.
    pub fn running(&self) -> usize {
        self.concurrency
            .saturating_sub(self.running.available_permits())
    }

    /// Admitted verifications waiting for a turn.
    pub fn waiting(&self) -> usize {
        let admitted = self
            .capacity
            .saturating_sub(self.admitted.available_permits());
        admitted.saturating_sub(self.running())
    }

    /// Most verifications running and waiting at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Logins turned away because the queue was full, since start-up.
    pub fn turned_away(&self) -> u64 {
        self.turned_away.load(Ordering::Relaxed)
    }
}

impl Admission {
    /// Whether `candidate` matches `stored` (the user's PHC string), or, for an unknown user
    /// (`None`), spends the same time on a dummy hash and answers false. Waits for a turn, then
    /// runs on the blocking pool; the turn is held until the hash is done, even if the request
    /// is dropped meanwhile, so the bound holds for the memory actually in use.
    pub async fn verify(self, candidate: String, stored: Option<String>) -> anyhow::Result<bool> {
        let turn = self.running.acquire_owned().await?;
        let place = self.place;
        let matches = tokio::task::spawn_blocking(move || {
            let matches = match stored {
                Some(hash) => password::verify(&candidate, &hash),
                None => password::verify_dummy(&candidate),
            };
            drop((turn, place));
            matches
        })
        .await?;
        Ok(matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admissions_stop_at_the_running_plus_the_queue_and_come_back_when_dropped() {
        let verifier = Verifier::new(2, 3);
        let held: Vec<Admission> = (0..5).map(|_| verifier.admit().unwrap()).collect();
        assert!(verifier.admit().is_none());
        assert_eq!(verifier.turned_away(), 1);
        assert_eq!((verifier.running(), verifier.waiting()), (0, 5));
        drop(held);
        assert!(verifier.admit().is_some());
    }

    #[tokio::test]
    async fn a_verification_waits_for_a_turn() {
        let verifier = Verifier::new(1, 1);
        let taken = Arc::clone(&verifier.running).try_acquire_owned().unwrap();
        let admission = verifier.admit().unwrap();
        let verification = tokio::spawn(admission.verify("wrong password".to_owned(), None));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!verification.is_finished(), "verified without a turn");
        drop(taken);
        assert!(!verification.await.unwrap().unwrap());
        assert_eq!(verifier.running.available_permits(), 1);
    }
}
