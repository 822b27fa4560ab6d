//! `scripts/db/roles.sql`: a schema owner that migrates, an app role limited to rows, and a
//! deployment that runs as Railway and compose run it (the owner migrates, the app role serves
//! and loads).

use std::process::{Command, Output};
use std::time::Duration;

use sqlx::{Executor, PgConnection};
use wiremock::MockServer;

use crate::helpers::{connect, fresh_database, run_binary, run_binary_with_stdin, Process};

/// The owner role's password in every test.
pub const OWNER_PASSWORD: &str = "owner-pw";
/// The app role's password in every test.
pub const APP_PASSWORD: &str = "app-pw";

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

    /// Runs roles.sql on `database` as the admin user, the passwords in psql's environment
    /// only; panics with psql's output on failure.
    pub fn apply(&self, database: &str) {
        let output = self.run(
            database,
            &[
                ("DB_OWNER_PASSWORD", OWNER_PASSWORD),
                ("DB_APP_PASSWORD", APP_PASSWORD),
            ],
            &[],
        );
        assert!(output.status.success(), "roles.sql failed: {output:?}");
    }

    /// Runs roles.sql with the role names and `args` on the command line and, of the password
    /// variables, only those in `env` in its environment.
    pub fn run(&self, database: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
        Command::new("psql")
            .arg(database)
            .args(["-X", "-q"])
            .args(["-v", &format!("owner_role={}", self.owner)])
            .args(["-v", &format!("app_role={}", self.app)])
            .args(args)
            .args([
                "-f",
                concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/db/roles.sql"),
            ])
            .env_remove("DB_OWNER_PASSWORD")
            .env_remove("DB_APP_PASSWORD")
            .envs(env.iter().copied())
            .output()
            .expect("run psql (the PostgreSQL client)")
    }
}

/// `database` as `user`, with the password roles.sql gave it.
pub fn as_user(database: &str, user: &str) -> String {
    let mut url = url::Url::parse(database).unwrap();
    url.set_username(user).unwrap();
    url.set_password(Some(if user.starts_with("owner") {
        OWNER_PASSWORD
    } else {
        APP_PASSWORD
    }))
    .unwrap();
    url.to_string()
}

async fn role_exists(database: &str, role: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)")
        .bind(role)
        .fetch_one(&mut connect(database).await)
        .await
        .unwrap()
}

async fn history_rows(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(conn)
        .await
        .expect("the app role reads the migration history")
}

/// The app role reads `_sqlx_migrations` and every attempt to change it is refused.
async fn assert_history_is_read_only_for(app_url: &str) {
    let mut app = connect(app_url).await;
    let before = history_rows(&mut app).await;
    assert_eq!(
        before,
        sigmasight::migrate::MIGRATOR.iter().count() as i64,
        "every migration is recorded"
    );
    for write in [
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99999999, 'forged', true, '\\x00', 0)",
        "UPDATE _sqlx_migrations SET success = false",
        "DELETE FROM _sqlx_migrations",
        "TRUNCATE _sqlx_migrations",
    ] {
        let error = app.execute(write).await.expect_err(write);
        assert!(
            error.to_string().contains("permission denied"),
            "{write}: {error}"
        );
    }
    assert_eq!(history_rows(&mut app).await, before);
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
async fn the_app_role_cannot_change_the_migration_history_when_the_roles_come_first() {
    // The order of a new deployment: roles.sql on an empty database, then the owner migrates.
    let database = fresh_database().await;
    let roles = Roles::unique();
    roles.apply(&database);
    let owner = sigmasight::config::DatabaseUrl::parse(&as_user(&database, &roles.owner)).unwrap();

    sigmasight::migrate::run(&owner)
        .await
        .expect("the owner migrates into the history table roles.sql made");

    assert_history_is_read_only_for(&as_user(&database, &roles.app)).await;
}

#[tokio::test]
async fn the_app_role_cannot_change_the_migration_history_when_the_roles_come_later() {
    // The order of an existing deployment: migrated by the admin, then switched to the roles.
    let database = crate::helpers::migrated_database().await;
    let roles = Roles::unique();

    roles.apply(&database);

    assert_history_is_read_only_for(&as_user(&database, &roles.app)).await;
    let owner = sigmasight::config::DatabaseUrl::parse(&as_user(&database, &roles.owner)).unwrap();
    sigmasight::migrate::run(&owner)
        .await
        .expect("the owner still migrates");
}

#[tokio::test]
async fn roles_sql_ignores_passwords_on_the_command_line_and_names_the_missing_variable() {
    let database = fresh_database().await;
    let roles = Roles::unique();

    // The old way: the passwords as psql variables, which `ps` shows.
    let on_command_line = roles.run(
        &database,
        &[],
        &["-v", "owner_password=owner-pw", "-v", "app_password=app-pw"],
    );
    let empty_app_password = roles.run(
        &database,
        &[
            ("DB_OWNER_PASSWORD", OWNER_PASSWORD),
            ("DB_APP_PASSWORD", ""),
        ],
        &[],
    );

    assert!(!on_command_line.status.success(), "{on_command_line:?}");
    assert!(
        String::from_utf8_lossy(&on_command_line.stderr)
            .contains("roles.sql: DB_OWNER_PASSWORD is not set"),
        "{on_command_line:?}"
    );
    assert!(!empty_app_password.status.success());
    assert!(
        String::from_utf8_lossy(&empty_app_password.stderr)
            .contains("roles.sql: DB_APP_PASSWORD is not set"),
        "{empty_app_password:?}"
    );
    assert!(!role_exists(&database, &roles.owner).await);
    assert!(!role_exists(&database, &roles.app).await);
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

#[tokio::test]
async fn a_deployment_as_on_railway_migrates_as_the_owner_and_serves_and_loads_as_the_app_role() {
    // Arrange: the one-time bootstrap, then the pre-deploy command: `migrate` with the app
    // role's DATABASE_URL and the owner's DATABASE_MIGRATION_URL, as the api service has them.
    let database = fresh_database().await;
    let roles = Roles::unique();
    roles.apply(&database);
    let owner_url = as_user(&database, &roles.owner);
    let app_url = as_user(&database, &roles.app);
    let migrated = run_binary(
        &["migrate"],
        &[
            ("DATABASE_URL", &app_url),
            ("DATABASE_MIGRATION_URL", &owner_url),
        ],
    );
    assert!(migrated.status.success(), "migrate: {migrated:?}");

    // Act: the first admin, the API with start-up migrations off, and one ETL run, all as the
    // app role.
    let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
    let created = run_binary_with_stdin(
        &["user", "create", "--email", &email, "--admin"],
        &[("DATABASE_URL", &app_url)],
        &format!("{}\n", crate::helpers::TEST_PASSWORD),
    );
    let server = Process::serve(&[("DATABASE_URL", &app_url), ("MIGRATE_ON_START", "false")]);
    let fmp = MockServer::start().await;
    crate::etl::fmp_serves(
        &fmp,
        "SPY",
        crate::etl::json_body(crate::etl::fmp_body("SPY", &["2025-01-14"])),
    )
    .await;
    let mut etl = Process::start(
        &["etl", "--date", "2025-01-14", "--symbols", "SPY"],
        &[
            ("DATABASE_URL", &app_url),
            ("FMP_API_KEY", crate::etl::FMP_KEY),
            ("FMP_BASE_URL", &fmp.uri()),
        ],
    );

    // Assert
    assert!(created.status.success(), "user create: {created:?}");
    assert!(
        server
            .answers_ok_within("/api/v1/health", Duration::from_secs(15))
            .await,
        "serve did not become ready: {:?}",
        server.log_lines()
    );
    let login = crate::helpers::client()
        .post(format!("{}/api/v1/auth/login", server.address()))
        .json(&serde_json::json!({"email": email, "password": crate::helpers::TEST_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "the first admin logs in");
    let status = etl.wait(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0), "etl: {:?}", etl.log_lines());
    let bars: i64 = sqlx::query_scalar("SELECT count(*) FROM daily_prices")
        .fetch_one(&mut connect(&database).await)
        .await
        .unwrap();
    assert_eq!(bars, 1);
    assert_history_is_read_only_for(&app_url).await;
}
