//! TLS to Postgres, against a server that accepts TLS connections only, with a test CA
//! (`scripts/test.sh` starts it: `TLS_DATABASE_URL`, `TLS_CA_FILE`, `TLS_WRONG_CA_FILE`).

use sigmasight::config::DatabaseUrl;
use sqlx::Connection;

use crate::helpers::run_binary;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: scripts/test.sh starts a TLS-only PostgreSQL and sets it")
    })
}

fn url(query: &str) -> String {
    format!("{}?{query}", env("TLS_DATABASE_URL"))
}

/// Connects and asks the server whether this session is encrypted.
async fn encrypted(url: &str) -> Result<bool, sqlx::Error> {
    let options = DatabaseUrl::parse(url).unwrap().connect_options();
    let mut conn = sqlx::PgConnection::connect_with(&options).await?;
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
}

fn migrate_stderr(url: &str) -> (Option<i32>, String) {
    let output = run_binary(&["migrate"], &[("DATABASE_URL", url)]);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn sslmode_require_connects_encrypted() {
    assert!(encrypted(&url("sslmode=require")).await.unwrap());
}

#[tokio::test]
async fn verify_full_with_the_right_ca_connects() {
    let query = format!("sslmode=verify-full&sslrootcert={}", env("TLS_CA_FILE"));

    assert!(encrypted(&url(&query)).await.unwrap());
}

#[tokio::test]
async fn verify_full_with_a_wrong_ca_fails_with_a_clear_message() {
    let query = format!(
        "sslmode=verify-full&sslrootcert={}",
        env("TLS_WRONG_CA_FILE")
    );

    assert!(encrypted(&url(&query)).await.is_err());
    let (code, stderr) = migrate_stderr(&url(&query));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("cannot connect to the database"),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
}

#[tokio::test]
async fn a_server_requiring_tls_rejects_sslmode_disable_with_a_clear_message() {
    assert!(encrypted(&url("sslmode=disable")).await.is_err());
    let (code, stderr) = migrate_stderr(&url("sslmode=disable"));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no encryption"), "{stderr}");
}
