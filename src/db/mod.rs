//! The database: the connection pool, and every statement the service and the ETL run, one
//! module per table or aggregate. The SQL is checked at compile time by sqlx's macros against
//! the offline data in `.sqlx/` (`scripts/check-sqlx.sh` checks that data against the
//! migrations; `--write` regenerates it). Callers get named async functions and row structs;
//! none of them writes SQL.

pub mod etl_runs;
pub mod health;
pub mod portfolios;
pub mod prices;
pub mod symbols;
pub mod user_changes;
pub mod users;

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

/// Whether `error` is a unique violation of `constraint` (an index or constraint name): the one
/// test behind every "already exists" answer.
pub fn is_unique_violation(error: &sqlx::Error, constraint: &str) -> bool {
    matches!(error, sqlx::Error::Database(e)
        if e.is_unique_violation() && e.constraint() == Some(constraint))
}
