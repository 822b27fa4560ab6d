//! The statements of the user cache's notifications (crate::auth::invalidation): migration
//! 0008's trigger announces changed users on [`CHANNEL`]; listeners confirm on [`CONFIRMATIONS`].

use sqlx::PgExecutor;

/// The channel migration 0008's trigger notifies, with a user's id as the payload.
pub const CHANNEL: &str = "sigmasight_users";

/// The channel on which listeners confirm each user they dropped: `<user id> <backend pid>`.
pub const CONFIRMATIONS: &str = "sigmasight_users_confirmed";

/// Sends the empty notification on [`CHANNEL`] that tells listeners their connection is alive.
pub async fn heartbeat(db: impl PgExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_notify($1, '')", CHANNEL)
        .execute(db)
        .await
        .map(drop)
}

/// Confirms, from a listener's own connection, that it dropped the user `id` (as announced).
pub async fn confirm(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT pg_notify($1, $2 || ' ' || pg_backend_pid())",
        CONFIRMATIONS,
        id
    )
    .execute(db)
    .await
    .map(drop)
}

/// The backend pids of this database's sessions named `application_name` (the listeners).
pub async fn sessions_named(
    db: impl PgExecutor<'_>,
    application_name: &str,
) -> sqlx::Result<Vec<i32>> {
    let pids = sqlx::query_scalar!(
        "SELECT pid FROM pg_stat_activity
         WHERE application_name = $1 AND datname = current_database()",
        application_name
    )
    .fetch_all(db)
    .await?;
    Ok(pids.into_iter().flatten().collect())
}

/// Which of `pids` are still connected.
pub async fn still_connected(db: impl PgExecutor<'_>, pids: &[i32]) -> sqlx::Result<Vec<i32>> {
    let pids = sqlx::query_scalar!("SELECT pid FROM pg_stat_activity WHERE pid = ANY($1)", pids)
        .fetch_all(db)
        .await?;
    Ok(pids.into_iter().flatten().collect())
}
