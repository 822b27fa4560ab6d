//! The users authenticated requests have read, kept in memory so that a request with a known
//! user makes one database round trip (its own query) instead of two.
//!
//! Immediate revocation is kept by invalidation, not by expiry: migration 0008's trigger
//! announces every change to a `users` row on the channel `db::user_changes::CHANNEL` at commit, and
//! [`crate::auth::invalidation`] drops the announced user from here. The cache answers only while
//! that listener is connected ([`UserCache::go_live`]); from the moment the listener's
//! connection is lost, the cache is emptied and every request reads its user again until the
//! listener is back, so no announcement can be missed unnoticed.
//!
//! A look-up that misses reads the row and stores it, unless an invalidation (of any user) or a
//! loss of the listener happened since the look-up began: the row read may predate a change
//! whose announcement came in meanwhile, and storing it would keep a revoked user alive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use crate::db::users::User;

/// The most users kept; when full, the cache is emptied and fills again with the users still
/// active (a simple bound: a few hundred bytes per user, so at most a few MiB).
pub const CAPACITY: usize = 10_000;

/// The users read by authenticated requests, while the invalidation listener is connected.
#[derive(Debug, Default)]
pub struct UserCache {
    users: RwLock<HashMap<Uuid, Arc<User>>>,
    /// Whether the listener is connected and listening: the cache answers only then.
    live: AtomicBool,
    /// Bumped by every invalidation, emptying and change of liveness: a miss stores its row only
    /// if this has not moved since the miss began.
    generation: AtomicU64,
}

/// A miss in progress: the generation when it began.
#[derive(Debug, Clone, Copy)]
#[must_use = "a miss stores its row through `UserCache::store`"]
pub struct Miss(u64);

impl UserCache {
    /// An empty cache that does not answer until [`UserCache::go_live`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The user with `id` if the cache holds it; otherwise a [`Miss`] to store the row read.
    pub fn get(&self, id: Uuid) -> Result<Arc<User>, Miss> {
        // The generation is read first: an invalidation after this read moves it, and `store`
        // then refuses the row read from the database.
        let miss = Miss(self.generation.load(Ordering::Acquire));
        if !self.live.load(Ordering::Acquire) {
            return Err(miss);
        }
        match self.read().get(&id) {
            Some(user) => Ok(Arc::clone(user)),
            None => Err(miss),
        }
    }

    /// Stores `user`, read after `miss` began, unless the cache changed since (see the module).
    pub fn store(&self, miss: Miss, user: Arc<User>) {
        if !self.live.load(Ordering::Acquire) {
            return;
        }
        let mut users = self.write();
        // Under the write lock: invalidations bump the generation while holding it, so none can
        // slip between this comparison and the insert.
        if self.generation.load(Ordering::Acquire) != miss.0 {
            return;
        }
        if users.len() >= CAPACITY && !users.contains_key(&user.id) {
            users.clear();
        }
        users.insert(user.id, user);
    }

    /// Drops the user with `id` (announced as changed or removed).
    pub fn invalidate(&self, id: Uuid) {
        let mut users = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        users.remove(&id);
    }

    /// The listener is connected and listening: the cache may answer, starting empty (anything
    /// announced before now was not heard).
    pub fn go_live(&self) {
        let mut users = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        users.clear();
        self.live.store(true, Ordering::Release);
    }

    /// The listener lost its connection (or has not made one): empty, and stop answering.
    pub fn go_dark(&self) {
        let mut users = self.write();
        self.live.store(false, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        users.clear();
    }

    /// Whether the cache answers (the listener is connected).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// How many users it holds.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether it holds no user.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, Arc<User>>> {
        // A panic while holding the lock cannot leave the map half-updated (every change is one
        // HashMap call), so a poisoned lock is used as it stands.
        self.users.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Uuid, Arc<User>>> {
        self.users.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn user(id: Uuid, token_version: i32) -> Arc<User> {
        Arc::new(User {
            id,
            email: format!("{id}@example.com"),
            password_hash: String::new(),
            role: "user".to_owned(),
            created_at: Utc::now(),
            disabled: false,
            token_version,
        })
    }

    fn hit(cache: &UserCache, id: Uuid) -> Option<i32> {
        cache.get(id).ok().map(|u| u.token_version)
    }

    #[test]
    fn a_stored_user_is_served_until_invalidated() {
        let cache = UserCache::new();
        cache.go_live();
        let id = Uuid::new_v4();
        let miss = cache.get(id).unwrap_err();
        cache.store(miss, user(id, 0));
        assert_eq!(hit(&cache, id), Some(0));
        cache.invalidate(id);
        assert_eq!(hit(&cache, id), None);
    }

    #[test]
    fn nothing_is_served_or_stored_while_the_listener_is_away() {
        let cache = UserCache::new();
        let id = Uuid::new_v4();
        let miss = cache.get(id).unwrap_err();
        cache.store(miss, user(id, 0));
        assert!(cache.is_empty(), "stored before the listener was live");

        cache.go_live();
        let miss = cache.get(id).unwrap_err();
        cache.store(miss, user(id, 0));
        assert_eq!(hit(&cache, id), Some(0));

        cache.go_dark();
        assert!(cache.is_empty(), "kept after the listener was lost");
        assert_eq!(hit(&cache, id), None);
        let miss = cache.get(id).unwrap_err();
        cache.store(miss, user(id, 0));
        assert!(cache.is_empty(), "stored while the listener was away");
    }

    #[test]
    fn a_row_read_across_an_invalidation_is_not_stored() {
        let cache = UserCache::new();
        cache.go_live();
        let id = Uuid::new_v4();
        // The request misses and reads the row (version 0)...
        let miss = cache.get(id).unwrap_err();
        // ...while the user is revoked and the announcement arrives...
        cache.invalidate(id);
        // ...so the stale row it read is not kept.
        cache.store(miss, user(id, 0));
        assert_eq!(hit(&cache, id), None);
        // The same holds across a reconnection of the listener.
        let miss = cache.get(id).unwrap_err();
        cache.go_dark();
        cache.go_live();
        cache.store(miss, user(id, 0));
        assert_eq!(hit(&cache, id), None);
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = UserCache::new();
        cache.go_live();
        for _ in 0..CAPACITY + 10 {
            let id = Uuid::new_v4();
            let miss = cache.get(id).unwrap_err();
            cache.store(miss, user(id, 0));
            assert!(cache.len() <= CAPACITY);
        }
        assert!(!cache.is_empty());
    }
}
