//! `scripts/db/roles.sql`: a schema owner that migrates, an app role limited to rows.

use std::time::Duration;

use sqlx::Executor;

use crate::helpers::{connect, fresh_database, Process};

/// Unique role names, since roles are cluster-wide and tests run in parallel.
pub struct Roles {
    pub owner: String,
    pub app: String,
}

impl Roles {
    pub fn unique() -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Self {
            owner: format!("owner_{}", &suffix[..12]),
            app: format!("app_{}", &suffix[..12]),
        }
    }

    /// Runs roles.sql on `database` as the admin user; panics with psql's output on failure.
    pub fn apply(&self, database: &str) {
        let output = std::process::Command::new("psql")
            .arg(database)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-v", &format!("owner_role={}", self.owner)])
            .args(["-v", &format!("app_role={}", self.app)])
            .args(["-v", "owner_password=owner-pw", "-v", "app_password=app-pw"])
            .args([
                "-f",
                concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/db/roles.sql"),
            ])
            .output()
            .expect("run psql (the PostgreSQL client)");
        assert!(output.status.success(), "roles.sql failed: {output:?}");
    }
}

/// `database` as `user`, with the password roles.sql gave it.
pub fn as_user(database: &str, user: &str) -> String {
    let mut url = url::Url::parse(database).unwrap();
    url.set_username(user).unwrap();
    url.set_password(Some(if user.starts_with("owner") {
        "owner-pw"
    } else {
        "app-pw"
    }))
    .unwrap();
    url.to_string()
}

#[tokio::test]
async fn the_app_role_writes_rows_but_cannot_drop_alter_or_create() {
    let database = fresh_database().await;
    let roles = Roles::unique();
    roles.apply(&database);
    let owner = sigmasight::config::DatabaseUrl::parse(&as_user(&database, &roles.owner)).unwrap();
    sigmasight::migrate::run(&owner)
        .await
        .expect("the owner migrates");
    let mut app = connect(&as_user(&database, &roles.app)).await;

    app.execute(
        "INSERT INTO daily_prices (symbol, date, open, high, low, close, volume, source)
         VALUES ('SPY', '2025-01-02', 1, 2, 1, 1, 10, 'fmp');
         UPDATE daily_prices SET volume = 11; DELETE FROM daily_prices;
         INSERT INTO etl_run (status) VALUES ('running')",
    )
    .await
    .expect("rows are the app's to read and write");

    for ddl in [
        "DROP TABLE daily_prices",
        "ALTER TABLE daily_prices ADD COLUMN sneaky int",
        "CREATE TABLE sneaky (id int)",
        "TRUNCATE daily_prices",
        "CREATE ROLE sneaky",
        "CREATE DATABASE sneaky",
    ] {
        let error = app.execute(ddl).await.expect_err(ddl);
        assert!(
            error.to_string().contains("permission denied")
                || error.to_string().contains("must be owner"),
            "{ddl}: {error}"
        );
    }
    let superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut app)
            .await
            .unwrap();
    assert!(!superuser);
}

#[tokio::test]
async fn serve_runs_as_the_app_role_while_the_owner_migrates_and_later_tables_are_covered() {
    let database = fresh_database().await;
    let roles = Roles::unique();
    roles.apply(&database);
    let owner_url = as_user(&database, &roles.owner);
    let app_url = as_user(&database, &roles.app);

    let process = Process::serve(&[
        ("DATABASE_URL", &app_url),
        ("DATABASE_MIGRATION_URL", &owner_url),
    ]);
    let ready = process
        .answers_ok_within("/api/v1/health", Duration::from_secs(15))
        .await;
    assert!(
        ready,
        "serve did not become ready: {:?}",
        process.log_lines()
    );

    // A later migration, run by the owner, creates a table: default privileges cover it.
    connect(&owner_url)
        .await
        .execute("CREATE TABLE added_later (id int)")
        .await
        .unwrap();
    connect(&app_url)
        .await
        .execute("INSERT INTO added_later VALUES (1)")
        .await
        .expect("default privileges grant rows on tables created later");
}

#[tokio::test]
async fn roles_sql_is_idempotent_and_takes_over_tables_migrated_by_another_role() {
    // Arrange: a database migrated by the admin, before the roles existed.
    let database = crate::helpers::migrated_database().await;
    let roles = Roles::unique();

    roles.apply(&database);
    roles.apply(&database);

    let owner: String = sqlx::query_scalar(
        "SELECT tableowner::text FROM pg_tables WHERE tablename = 'daily_prices'",
    )
    .fetch_one(&mut connect(&database).await)
    .await
    .unwrap();
    assert_eq!(owner, roles.owner);
    let owner_url =
        sigmasight::config::DatabaseUrl::parse(&as_user(&database, &roles.owner)).unwrap();
    sigmasight::migrate::run(&owner_url)
        .await
        .expect("the owner can run migrations now");
    connect(&as_user(&database, &roles.app))
        .await
        .execute("INSERT INTO etl_run (status) VALUES ('running')")
        .await
        .expect("the app role writes rows of tables it did not create");
}
