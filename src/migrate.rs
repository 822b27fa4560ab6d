//! Schema migrations: the SQL files in `migrations/`, embedded in the binary.
//!
//! They are applied on a dedicated connection, never a pooled one: sqlx serialises migrators
//! with a session-level advisory lock, and a migration that fails on a pooled connection would
//! return that connection to the pool with the lock still held, blocking every later migrator.
//! Here a failure closes the connection, which ends the session and releases the lock.
//!
//! Versions recorded in the database but unknown to this binary are tolerated: they were applied
//! by a newer release, and tolerating them is what lets a prior image be rolled back to (see
//! `docs/operations.md`, "Rollback").

use std::collections::HashMap;
use std::time::Duration;

use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::{Connection, PgConnection};

use crate::config::DatabaseUrl;

/// The migrations compiled into this binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A migration this run applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The version (the file name's numeric prefix).
    pub version: i64,
    /// The description (the rest of the file name).
    pub description: String,
    /// How long its SQL took.
    pub elapsed: Duration,
}

/// What one `run` did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Migrations applied by this run, in order.
    pub applied: Vec<Applied>,
    /// Versions present in the database that this binary does not know (a newer release's).
    pub unknown_versions: Vec<i64>,
}

/// Why migrations could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The database could not be reached: worth retrying while it comes up.
    #[error("cannot connect to the database to migrate: {0}")]
    Connect(#[source] sqlx::Error),
    /// A migration or the bookkeeping around it failed: retrying will not help.
    #[error("{0}")]
    Migrate(#[from] MigrateError),
}

impl MigrationError {
    /// True when the same call may succeed later without anybody changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect(sqlx::Error::Database(e)) => {
                // cannot_connect_now (starting up or shutting down), too_many_connections
                matches!(e.code().as_deref(), Some("57P03" | "53300"))
            }
            Self::Connect(sqlx::Error::Configuration(_)) => false,
            Self::Connect(_) => true,
            Self::Migrate(MigrateError::Execute(sqlx::Error::Io(_))) => true,
            Self::Migrate(_) => false,
        }
    }
}

/// Applies every pending migration in `MIGRATOR` to the database at `url`.
///
/// Concurrent callers (several replicas starting at once) queue on the advisory lock; each
/// migration is applied exactly once.
pub async fn run(url: &DatabaseUrl) -> Result<Report, MigrationError> {
    let mut conn = PgConnection::connect_with(&url.connect_options())
        .await
        .map_err(MigrationError::Connect)?;
    conn.lock().await?;
    let result = apply_pending(&mut conn).await;
    let unlocked = conn.unlock().await;
    // Closing ends the session, which releases the advisory lock even if unlocking failed.
    let _ = conn.close().await;
    let report = result?;
    unlocked?;
    Ok(report)
}

async fn apply_pending(conn: &mut PgConnection) -> Result<Report, MigrationError> {
    conn.ensure_migrations_table().await?;
    if let Some(version) = conn.dirty_version().await? {
        return Err(MigrateError::Dirty(version).into());
    }
    let applied: HashMap<i64, _> = conn
        .list_applied_migrations()
        .await?
        .into_iter()
        .map(|m| (m.version, m.checksum))
        .collect();

    let mut report = Report {
        unknown_versions: applied
            .keys()
            .copied()
            .filter(|v| !MIGRATOR.iter().any(|m| m.version == *v))
            .collect(),
        ..Report::default()
    };
    report.unknown_versions.sort_unstable();

    for migration in MIGRATOR.iter() {
        if migration.migration_type.is_down_migration() {
            continue;
        }
        match applied.get(&migration.version) {
            Some(checksum) if *checksum != migration.checksum => {
                return Err(MigrateError::VersionMismatch(migration.version).into());
            }
            Some(_) => {}
            None => {
                let elapsed = conn.apply(migration).await?;
                tracing::info!(
                    version = migration.version,
                    description = %migration.description,
                    elapsed_ms = elapsed.as_millis() as u64,
                    "applied migration"
                );
                report.applied.push(Applied {
                    version: migration.version,
                    description: migration.description.to_string(),
                    elapsed,
                });
            }
        }
    }
    Ok(report)
}

/// `sigmasight migrate`: applies pending migrations and says which.
pub async fn command(url: &DatabaseUrl) -> Result<Report, MigrationError> {
    let report = run(url).await?;
    let applied: Vec<String> = report
        .applied
        .iter()
        .map(|m| format!("{} {}", m.version, m.description))
        .collect();
    if !report.unknown_versions.is_empty() {
        let versions: Vec<String> = report.unknown_versions.iter().map(i64::to_string).collect();
        tracing::warn!(
            versions = versions.join(", "),
            "the database has migrations this binary does not know (applied by a newer release); continuing"
        );
    }
    tracing::info!(
        applied = applied.len(),
        migrations = applied.join(", "),
        "migrations are up to date"
    );
    Ok(report)
}

/// Where start-up migrations stand, shared between the migrating task and readiness.
#[derive(Debug, Clone, Default)]
pub struct Status(std::sync::Arc<std::sync::atomic::AtomicU8>);

/// The states of [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// `MIGRATE_ON_START=false`: another process owns migrations.
    Skipped,
    /// Start-up migrations have not finished yet.
    Pending,
    /// Start-up migrations are applied.
    Applied,
}

impl Status {
    /// A status starting in `state`.
    pub fn new(state: State) -> Self {
        let status = Self::default();
        status.set(state);
        status
    }

    /// The current state.
    pub fn get(&self) -> State {
        match self.0.load(std::sync::atomic::Ordering::Acquire) {
            0 => State::Skipped,
            1 => State::Pending,
            _ => State::Applied,
        }
    }

    /// Moves to `state`.
    pub fn set(&self, state: State) {
        let value = match state {
            State::Skipped => 0,
            State::Pending => 1,
            State::Applied => 2,
        };
        self.0.store(value, std::sync::atomic::Ordering::Release);
    }
}

impl State {
    /// The name readiness reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skipped => "skipped",
            Self::Pending => "pending",
            Self::Applied => "applied",
        }
    }
}
