//! The Postgres connection pool.

use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::config::Config;

/// A pool that connects lazily: the process starts, and `/health` answers, while Postgres is
/// still coming up or is down; requests that need the database wait for a connection (at most
/// `DATABASE_POOL_TIMEOUT_SECONDS`) or fail.
///
/// Each connection is pinged before it is handed out (the seed's `pool_pre_ping`), so a
/// connection broken by a database restart is replaced rather than failing a request, and is
/// recycled after `DATABASE_POOL_RECYCLE_SECONDS` (the seed's `pool_recycle`).
pub fn pool(config: &Config) -> PgPool {
    PgPoolOptions::new()
        .max_connections(config.database_pool_size)
        .min_connections(0)
        .test_before_acquire(true)
        .acquire_timeout(config.database_pool_timeout)
        .max_lifetime(config.database_pool_recycle)
        .connect_lazy_with(config.database_url.connect_options())
}
