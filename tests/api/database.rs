use sigmasight::config::DatabaseUrl;
use sigmasight::domain::{PortfolioName, Price, Quantity, Symbol};
use sqlx::Executor;

use crate::helpers::{admin_url, connect, migrated_database, with_database, TestApp};

fn with_sslmode(database: &str, mode: &str) -> String {
    format!("{database}?sslmode={mode}")
}

#[tokio::test]
async fn sslmode_from_the_url_is_honoured() {
    // The test server has TLS off: `require` must fail rather than fall back to plain text,
    // while `disable` and `prefer` connect.
    let database = with_database(&admin_url(), "postgres");

    for mode in ["disable", "prefer"] {
        let url = DatabaseUrl::parse(&with_sslmode(&database, mode)).unwrap();
        sqlx::PgConnection::connect_with_options(&url)
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
    }
    for mode in ["require", "verify-full"] {
        let url = DatabaseUrl::parse(&with_sslmode(&database, mode)).unwrap();
        let error = sqlx::PgConnection::connect_with_options(&url)
            .await
            .unwrap_err();
        assert!(
            error.to_string().to_lowercase().contains("tls"),
            "{mode}: {error}"
        );
    }
}

trait ConnectWith {
    async fn connect_with_options(url: &DatabaseUrl) -> Result<sqlx::PgConnection, sqlx::Error>;
}

impl ConnectWith for sqlx::PgConnection {
    async fn connect_with_options(url: &DatabaseUrl) -> Result<sqlx::PgConnection, sqlx::Error> {
        use sqlx::Connection;
        sqlx::PgConnection::connect_with(&url.connect_options()).await
    }
}

#[tokio::test]
async fn a_connection_killed_while_idle_is_replaced_before_a_request_uses_it() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/api/v1/health").await.status(), 200);
    let name = url::Url::parse(&app.database_url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();

    // Kill the pooled connection(s), as a database restart or failover would.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&name)
    .fetch_all(&mut connect(&admin_url()).await)
    .await
    .unwrap();
    assert!(!killed.is_empty(), "the pool held a connection");
    // Connections idle this long are pinged before use (those in constant use are not).
    tokio::time::sleep(sigmasight::db::PING_AFTER_IDLE + std::time::Duration::from_millis(100))
        .await;

    assert_eq!(
        app.get("/api/v1/health").await.status(),
        200,
        "the dead connection was handed out"
    );
}

#[tokio::test]
async fn daily_prices_keeps_exact_decimals_and_refuses_malformed_bars() {
    let database = migrated_database().await;
    let mut conn = connect(&database).await;
    let insert = |values: &str| {
        format!(
            "INSERT INTO daily_prices (symbol, date, open, high, low, close, adj_close, volume, source) VALUES {values}"
        )
    };

    conn.execute(
        insert("('BRK.B', '2025-01-02', 1.000001, 2.5, 0.1, 2.123456, 2.1, 100, 'fmp')").as_str(),
    )
    .await
    .expect("a well-formed bar");
    let close: String =
        sqlx::query_scalar("SELECT close::text FROM daily_prices WHERE symbol = 'BRK.B'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(close, "2.123456");

    let malformed = [
        (
            "high below low",
            "('A', '2025-01-02', 1, 1, 2, 1, 1, 1, 'fmp')",
        ),
        (
            "negative price",
            "('A', '2025-01-03', -1, 2, -1, 1, 1, 1, 'fmp')",
        ),
        (
            "close above high",
            "('A', '2025-01-06', 1, 2, 1, 3, 3, 1, 'fmp')",
        ),
        (
            "open below low",
            "('A', '2025-01-07', 0.5, 2, 1, 1, 1, 1, 'fmp')",
        ),
        (
            "negative volume",
            "('A', '2025-01-08', 1, 2, 1, 1, 1, -5, 'fmp')",
        ),
        (
            "lower-case symbol",
            "('aapl', '2025-01-08', 1, 2, 1, 1, 1, 5, 'fmp')",
        ),
        (
            "empty symbol",
            "('', '2025-01-08', 1, 2, 1, 1, 1, 5, 'fmp')",
        ),
        (
            "symbol starting with a dot",
            "('.A', '2025-01-08', 1, 2, 1, 1, 1, 5, 'fmp')",
        ),
        (
            "symbol starting with a dash",
            "('-A', '2025-01-08', 1, 2, 1, 1, 1, 5, 'fmp')",
        ),
        (
            "symbol of 21 characters",
            "('ABCDEFGHIJKLMNOPQRSTU', '2025-01-08', 1, 2, 1, 1, 1, 5, 'fmp')",
        ),
        (
            "symbol with a space",
            "('BRK B', '2025-01-08', 1, 2, 1, 1, 1, 5, 'fmp')",
        ),
        (
            "non-ASCII symbol",
            "('ÄPPL', '2025-01-08', 1, 2, 1, 1, 1, 5, 'fmp')",
        ),
        (
            "upper-case source",
            "('A', '2025-01-08', 1, 2, 1, 1, 1, 5, 'FMP')",
        ),
        (
            "source starting with a digit",
            "('A', '2025-01-08', 1, 2, 1, 1, 1, 5, '1fmp')",
        ),
        (
            "source of 33 characters",
            "('A', '2025-01-08', 1, 2, 1, 1, 1, 5, 'abcdefghijklmnopqrstuvwxyzabcdefg')",
        ),
    ];
    for good in ["^GSPC", "BF-B", "A", "ABCDEFGHIJKLMNOPQRST", "0700"] {
        conn.execute(
            insert(&format!(
                "('{good}', '2025-02-03', 1, 2, 1, 1, 1, 5, 'polygon_2')"
            ))
            .as_str(),
        )
        .await
        .unwrap_or_else(|e| panic!("{good} was refused: {e}"));
    }
    for (what, values) in malformed {
        assert!(
            conn.execute(insert(values).as_str()).await.is_err(),
            "{what} was accepted"
        );
    }
    conn.execute(insert("('BRK.B', '2025-01-02', 1, 2, 1, 1, 1, 1, 'polygon')").as_str())
        .await
        .expect_err("one bar per symbol and day");
}

#[tokio::test]
async fn etl_run_rows_are_consistent_about_being_finished() {
    let database = migrated_database().await;
    let mut conn = connect(&database).await;

    conn.execute("INSERT INTO etl_run (status) VALUES ('running')")
        .await
        .expect("a running run");
    conn.execute("INSERT INTO etl_run (status, finished_at) VALUES ('succeeded', now())")
        .await
        .expect("a finished run");
    assert!(conn
        .execute("INSERT INTO etl_run (status) VALUES ('succeeded')")
        .await
        .is_err());
    assert!(conn
        .execute("INSERT INTO etl_run (status, finished_at) VALUES ('bogus', now())")
        .await
        .is_err());
}

#[tokio::test]
async fn domain_values_are_stored_and_read_back_through_their_columns_types() {
    let mut conn = connect(&migrated_database().await).await;

    let (symbol, quantity, price, name): (Symbol, Quantity, Price, PortfolioName) =
        sqlx::query_as("SELECT $1::text, $2::numeric(24,8), $3::numeric(20,6), $4::text")
            .bind(Symbol::parse("BRK.B").unwrap())
            .bind(Quantity::parse("-9999999999999999.99999999").unwrap())
            .bind(Price::parse("99999999999999.999999").unwrap())
            .bind(PortfolioName::parse(" Core ").unwrap())
            .fetch_one(&mut conn)
            .await
            .unwrap();

    assert_eq!(symbol.as_str(), "BRK.B");
    assert_eq!(quantity.to_string(), "-9999999999999999.99999999");
    assert_eq!(price.to_string(), "99999999999999.999999");
    assert_eq!(name.as_str(), "Core");
}

#[tokio::test]
async fn postgres_reads_the_ticker_pattern_as_the_parser_does() {
    // The pattern is the positions table's CHECK, and the OpenAPI document's.
    let mut conn = connect(&migrated_database().await).await;
    let texts = [
        "AAPL",
        "aapl",
        "^GSPC",
        ".A",
        "-A",
        "A B",
        "BF-B",
        "BRK.B",
        "0700",
        "",
        "A\n",
        "ÄPPL",
        "ABCDEFGHIJKLMNOPQRST",
        "ABCDEFGHIJKLMNOPQRSTU",
    ];

    let rows: Vec<(String, bool)> = sqlx::query_as("SELECT t, t ~ $2 FROM unnest($1::text[]) t")
        .bind(&texts[..])
        .bind(Symbol::PATTERN)
        .fetch_all(&mut conn)
        .await
        .unwrap();

    assert_eq!(rows.len(), texts.len());
    for (text, matches) in rows {
        assert_eq!(matches, Symbol::is_valid(&text), "{text:?}");
    }
}
