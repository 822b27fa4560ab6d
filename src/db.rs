//! The Postgres connection pool.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Connection;

use crate::config::Config;

/// A pooled connection idle at least this long is pinged before it is handed out.
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A pool that connects lazily: the process starts, and `/health` answers, while Postgres is
/// still coming up or is down; requests that need the database wait for a connection (at most
/// `DATABASE_POOL_TIMEOUT_SECONDS`) or fail.
///
/// A connection that sat idle for [`PING_AFTER_IDLE`] or more is pinged before it is handed
/// out (the seed's `pool_pre_ping`), so one broken by a database restart or failover while the
/// service was quiet is replaced rather than failing a request. One in continuous use is not:
/// a ping per checkout was a second round trip for every query, and a restart under load fails
/// the requests in flight whatever the pool does. (HikariCP skips its check for connections
/// used within the last 500 ms for the same reason.) Connections are recycled after
/// `DATABASE_POOL_RECYCLE_SECONDS` (the seed's `pool_recycle`).
pub fn pool(config: &Config) -> PgPool {
    PgPoolOptions::new()
        .max_connections(config.database_pool_size)
        .min_connections(0)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                // `false` closes the connection and the pool opens or takes another.
                Ok(meta.idle_for < PING_AFTER_IDLE || conn.ping().await.is_ok())
            })
        })
        .acquire_timeout(config.database_pool_timeout)
        .max_lifetime(config.database_pool_recycle)
        .connect_lazy_with(config.database_url.connect_options())
}
