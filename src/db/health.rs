//! The database's own health: what readiness and the metrics scrape read.

use sqlx::PgPool;

/// One round trip: `SELECT 1`.
pub async fn ping(db: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT 1 AS one").fetch_one(db).await?;
    Ok(())
}
