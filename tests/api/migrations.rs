use std::time::Duration;

use sigmasight::config::DatabaseUrl;
use sigmasight::migrate::{self, MIGRATOR};
use sqlx::Executor;

use crate::helpers::{connect, fresh_database, run_binary, TestApp};

fn url(database: &str) -> DatabaseUrl {
    DatabaseUrl::parse(database).unwrap()
}

fn migration_count() -> usize {
    MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .count()
}

async fn applied_versions(database: &str) -> Vec<(i64, i64)> {
    sqlx::query_as(
        "SELECT version, count(*) FROM _sqlx_migrations GROUP BY version ORDER BY version",
    )
    .fetch_all(&mut connect(database).await)
    .await
    .unwrap()
}

#[tokio::test]
async fn migrating_twice_applies_everything_once_then_nothing() {
    let database = fresh_database().await;

    let first = migrate::run(&url(&database)).await.unwrap();
    let second = migrate::run(&url(&database)).await.unwrap();

    assert_eq!(first.applied.len(), migration_count());
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(applied_versions(&database).await.len(), migration_count());
}

#[tokio::test]
async fn the_migrate_command_says_which_migrations_it_applied() {
    let database = fresh_database().await;

    let first = run_binary(&["migrate"], &[("DATABASE_URL", &database)]);
    let second = run_binary(&["migrate"], &[("DATABASE_URL", &database)]);

    assert!(first.status.success(), "{first:?}");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains(&format!(
            "applied {} migration(s): 1 daily prices",
            migration_count()
        )),
        "{stdout}"
    );
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).contains("up to date"));
}

#[tokio::test]
async fn the_migrate_command_fails_with_a_sentence_and_exit_1_when_the_database_is_unreachable() {
    let port = crate::helpers::free_port();
    let database = format!("postgres://app:pw@127.0.0.1:{port}/app");

    let output = run_binary(&["migrate"], &[("DATABASE_URL", &database)]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("migrations failed: cannot connect to the database"),
        "{stderr}"
    );
}

#[tokio::test]
async fn concurrent_migrators_serialise_and_each_migration_is_applied_once() {
    let database = fresh_database().await;

    let runs = (0..4).map(|_| {
        let url = url(&database);
        tokio::spawn(async move { migrate::run(&url).await })
    });
    let reports: Vec<_> = futures_join(runs).await;

    let applied: usize = reports
        .iter()
        .map(|r| r.as_ref().expect("every migrator succeeds").applied.len())
        .sum();
    assert_eq!(
        applied,
        migration_count(),
        "applied in total across migrators"
    );
    for (version, count) in applied_versions(&database).await {
        assert_eq!(count, 1, "version {version}");
    }
}

async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_binary_starts_and_serves_against_a_database_migrated_by_a_newer_release() {
    // Arrange: a migration this binary does not have, as a newer release would leave it.
    let database = fresh_database().await;
    migrate::run(&url(&database)).await.unwrap();
    let mut conn = connect(&database).await;
    conn.execute(
        "CREATE TABLE added_by_newer_release (id int);
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'added by a newer release', true, '\\x00', 1)",
    )
    .await
    .unwrap();

    let report = migrate::run(&url(&database))
        .await
        .expect("tolerates the unknown version");
    assert_eq!(report.unknown_versions, [99990101000000]);
    let app = TestApp::spawn_with(&database, |f| f).await;
    app.wait_until_ready().await;
    let body: serde_json::Value = app.get("/api/v1/health").await.json().await.unwrap();
    assert_eq!(body["migrations"], "applied");
}

#[tokio::test]
async fn a_failed_migration_leaves_no_lock_behind_and_is_not_retried() {
    let database = fresh_database().await;
    let mut conn = connect(&database).await;
    conn.execute("CREATE TABLE daily_prices (conflict int)")
        .await
        .unwrap();

    let error = migrate::run(&url(&database)).await.unwrap_err();

    assert!(!error.is_transient(), "{error}");
    let lock_held = || async {
        let mut conn = connect(&database).await;
        // pg_locks is cluster-wide: count only this database's locks, not those of tests
        // running alongside (the ETL's single-writer lock, other migrators).
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
            > 0
    };
    let released =
        crate::helpers::poll(Duration::from_secs(2), || async { !lock_held().await }).await;
    assert!(released, "the migrator's advisory lock is still held");
    conn.execute("DROP TABLE daily_prices").await.unwrap();
    let retry = tokio::time::timeout(Duration::from_secs(10), migrate::run(&url(&database)))
        .await
        .expect("the next migrator is not blocked");
    assert_eq!(retry.unwrap().applied.len(), migration_count());
}

#[tokio::test]
async fn serve_exits_1_when_a_start_up_migration_fails_for_good() {
    let database = fresh_database().await;
    connect(&database)
        .await
        .execute("CREATE TABLE daily_prices (conflict int)")
        .await
        .unwrap();
    let mut process = crate::helpers::Process::serve(&[("DATABASE_URL", &database)]);

    let status = process.wait(Duration::from_secs(15)).await;

    assert_eq!(status.code(), Some(1));
    process
        .wait_for_log(|l| l["message"] == "start-up migrations failed; stopping")
        .await;
}

#[tokio::test]
async fn an_edited_migration_is_refused() {
    let database = fresh_database().await;
    migrate::run(&url(&database)).await.unwrap();
    connect(&database)
        .await
        .execute("UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = 1")
        .await
        .unwrap();

    let error = migrate::run(&url(&database)).await.unwrap_err();

    assert!(
        error
            .to_string()
            .contains("migration 1 was previously applied but has been modified"),
        "{error}"
    );
}

#[tokio::test]
async fn three_replicas_starting_together_on_an_empty_database_all_become_ready() {
    let database = fresh_database().await;

    let replicas: Vec<_> = (0..3)
        .map(|_| crate::helpers::Process::serve(&[("DATABASE_URL", &database)]))
        .collect();

    for replica in &replicas {
        let ready = replica
            .answers_ok_within("/api/v1/health", Duration::from_secs(20))
            .await;
        assert!(ready, "replica on port {} never became ready", replica.port);
    }
    let versions = applied_versions(&database).await;
    assert_eq!(versions.len(), migration_count());
    assert!(
        versions.iter().all(|(_, count)| *count == 1),
        "{versions:?}"
    );
    let applying: usize = replicas
        .iter()
        .flat_map(|r| r.logs())
        .filter(|l| l["message"] == "applied migration")
        .count();
    assert_eq!(
        applying,
        migration_count(),
        "each migration applied by exactly one replica"
    );
}
