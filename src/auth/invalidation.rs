//! Keeps [`UserCache`] honest: one connection of its own LISTENs on [`CHANNEL`] and drops each
//! announced user; the cache answers only while that connection is known to be alive.
//!
//! "Known to be alive": a lost connection usually shows at once (the server closed it), but a
//! connection cut silently by the network would wait for a notification forever while the cache
//! kept answering. So every [`HEARTBEAT`] the pool sends an empty notification on the channel;
//! when nothing at all arrives for [`SILENCE_LIMIT`], the listener counts as lost. Whenever it is
//! lost, the cache is emptied and stops answering at once, and a new connection is tried after
//! [`RETRY_AFTER`]; the cache answers again (empty) once that one listens.
//!
//! A notification reaches the listener a moment after the change commits, so a request could
//! slip in between. Changes made through the project's own code close that gap: every dropped
//! user is confirmed on `db::user_changes::CONFIRMATIONS` (the user's id and the listener's backend pid), and
//! [`Confirmations`] waits, after the commit, until every listener present before the change
//! has confirmed it (or is gone). `sigmasight user disable` returns only then, so a request
//! made after it returns is refused by every running API process.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::cache::UserCache;
use crate::db::user_changes::{self, CHANNEL};

/// How often the pool sends the heartbeat notification.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// With nothing heard for this long (three heartbeats), the listener counts as lost.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(15);

/// The wait before connecting again after a loss or a failed attempt.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The listening connection's `application_name` (seen in `pg_stat_activity`).
pub const APPLICATION_NAME: &str = "sigmasight-user-cache";

/// How long [`Confirmations::wait`] waits for every listener before it gives up.
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(5);

/// The running listener and heartbeat.
pub struct Invalidation {
    listener: JoinHandle<()>,
    heartbeat: JoinHandle<()>,
    connection: PgPool,
}

impl Invalidation {
    /// Starts listening with `options` (a connection apart from `pool`'s, so the listener never
    /// takes a request's connection) and sending heartbeats through `pool`.
    pub fn start(options: PgConnectOptions, pool: PgPool, cache: Arc<UserCache>) -> Self {
        let connection = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(options.application_name(APPLICATION_NAME));
        Self {
            listener: tokio::spawn(listen(connection.clone(), cache)),
            heartbeat: tokio::spawn(heartbeat(pool)),
            connection,
        }
    }

    /// Stops both tasks and closes the listening connection, waiting at most `wait` for it to
    /// close (a database that stopped answering would otherwise hold the shutdown).
    pub async fn stop(self, wait: Duration) {
        self.heartbeat.abort();
        self.listener.abort();
        let _ = self.heartbeat.await;
        let _ = self.listener.await;
        let _ = tokio::time::timeout(wait, self.connection.close()).await;
    }
}

/// Listens until stopped, connecting again after every loss.
async fn listen(connection: PgPool, cache: Arc<UserCache>) {
    // Only the first of a run of failed attempts is logged (the database may be down a while).
    let mut failing = false;
    loop {
        let lost = follow(&connection, &cache).await;
        cache.go_dark();
        let failed = matches!(lost, Lost::Failed(_));
        if !(failed && failing) {
            tracing::warn!(
                reason = %lost,
                "user cache: the change listener is not connected; every request reads its user until it is"
            );
        }
        failing = failed;
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// Why a listening connection ended.
#[derive(Debug, thiserror::Error)]
enum Lost {
    /// The server closed it.
    #[error("the connection was closed")]
    Closed,
    /// Nothing arrived for [`SILENCE_LIMIT`].
    #[error("nothing heard for {}s, not even a heartbeat", SILENCE_LIMIT.as_secs())]
    Silent,
    /// Connecting, listening or reading failed.
    #[error(transparent)]
    Failed(#[from] sqlx::Error),
}

/// One listening connection, followed until it is lost.
async fn follow(connection: &PgPool, cache: &UserCache) -> Lost {
    let mut listener = match PgListener::connect_with(connection).await {
        Ok(listener) => listener,
        Err(error) => return error.into(),
    };
    // Nothing to reconnect behind the cache's back: a loss ends this function.
    listener.eager_reconnect(false);
    if let Err(error) = listener.listen(CHANNEL).await {
        return error.into();
    }
    cache.go_live();
    tracing::info!("user cache: listening for changes to users");
    loop {
        match tokio::time::timeout(SILENCE_LIMIT, listener.try_recv()).await {
            Ok(Ok(Some(notification))) => match notification.payload() {
                "" => {}
                payload => match Uuid::parse_str(payload) {
                    Ok(id) => {
                        cache.invalidate(id);
                        if let Err(error) = user_changes::confirm(&mut listener, payload).await {
                            return error.into();
                        }
                    }
                    // Not ours to read: whatever it meant, forgetting everyone is safe.
                    Err(_) => cache.go_live(),
                },
            },
            Ok(Ok(None)) => return Lost::Closed,
            Ok(Err(error)) => return error.into(),
            Err(_) => return Lost::Silent,
        }
    }
}

/// Sends the empty notification every [`HEARTBEAT`] (failures are the listener's concern: it
/// hears nothing and reconnects).
async fn heartbeat(pool: PgPool) {
    let mut every = tokio::time::interval(HEARTBEAT);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let _ = user_changes::heartbeat(&pool).await;
    }
}

/// The listeners of the moment, each to confirm that it dropped a changed user.
pub struct Confirmations {
    listener: PgListener,
    pending: HashSet<i32>,
}

impl Confirmations {
    /// Starts listening for confirmations and notes the listeners present: make the change
    /// after this, then [`Confirmations::wait`]. A listener that connects later starts with an
    /// empty cache, so it has nothing to confirm.
    pub async fn expect(db: &PgPool) -> sqlx::Result<Self> {
        let mut listener = PgListener::connect_with(db).await?;
        listener.listen(user_changes::CONFIRMATIONS).await?;
        let pending = user_changes::sessions_named(&mut listener, APPLICATION_NAME)
            .await?
            .into_iter()
            .collect();
        Ok(Self { listener, pending })
    }

    /// Waits until every listener noted has confirmed dropping `user`, or has disconnected,
    /// for at most `within`: the number that did neither (0 when all is done).
    pub async fn wait(mut self, user: Uuid, within: Duration) -> sqlx::Result<usize> {
        let deadline = tokio::time::Instant::now() + within;
        let wanted = user.to_string();
        while !self.pending.is_empty() {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            let tick = (deadline - now).min(Duration::from_millis(200));
            match tokio::time::timeout(tick, self.listener.try_recv()).await {
                Ok(Ok(Some(confirmation))) => {
                    let confirmed = confirmation
                        .payload()
                        .split_once(' ')
                        .filter(|(id, _)| *id == wanted)
                        .and_then(|(_, pid)| pid.parse::<i32>().ok());
                    if let Some(pid) = confirmed {
                        self.pending.remove(&pid);
                    }
                }
                Ok(Ok(None)) => return Err(sqlx::Error::PoolClosed),
                Ok(Err(error)) => return Err(error),
                // Every so often: a listener that disconnected will never confirm.
                Err(_) => {
                    let pending: Vec<i32> = self.pending.iter().copied().collect();
                    let present =
                        user_changes::still_connected(&mut self.listener, &pending).await?;
                    self.pending.retain(|pid| present.contains(pid));
                }
            }
        }
        Ok(self.pending.len())
    }
}
