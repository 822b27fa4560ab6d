use crate::helpers::{client, migrated_database, Process};

#[tokio::test]
async fn each_request_writes_one_flat_json_access_line_with_its_request_id() {
    let database = migrated_database().await;
    let process = Process::serve(&[("DATABASE_URL", &database), ("MIGRATE_ON_START", "false")]);
    process.wait_until_live().await;

    let response = client()
        .get(format!("{}/api/v1/health", process.address()))
        .header("X-Request-ID", "log-test-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let line = process
        .wait_for_log(|l| l["target"] == "access" && l["request_id"] == "log-test-1")
        .await;
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/api/v1/health");
    assert_eq!(line["status"], 200);
    assert_eq!(line["level"], "info");
    assert!(line["duration_ms"].is_number(), "{line}");
    assert!(
        line["ts"]
            .as_str()
            .is_some_and(|ts| chrono::DateTime::parse_from_rfc3339(ts).is_ok()),
        "{line}"
    );
    let access_lines = process
        .logs()
        .into_iter()
        .filter(|l| l["request_id"] == "log-test-1" && l["target"] == "access")
        .count();
    assert_eq!(access_lines, 1);
}

#[tokio::test]
async fn lines_logged_while_serving_a_request_carry_its_id_and_no_password() {
    // Arrange: a URL with a password, to an address where nothing listens.
    let port = crate::helpers::free_port();
    let url = format!("postgres://app:do-not-log-me@127.0.0.1:{port}/app");
    let process = Process::serve(&[("DATABASE_URL", &url), ("MIGRATE_ON_START", "false")]);
    process.wait_until_live().await;

    let response = client()
        .get(format!("{}/api/v1/health", process.address()))
        .header("X-Request-ID", "log-test-2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);

    let warning = process
        .wait_for_log(|l| l["level"] == "warn" && l["request_id"] == "log-test-2")
        .await;
    assert!(
        warning["message"].as_str().unwrap().contains("readiness"),
        "{warning}"
    );
    for line in process.log_lines() {
        assert!(
            !line.contains("do-not-log-me"),
            "a password reached the log: {line}"
        );
    }
}

#[tokio::test]
async fn log_level_filters_lines() {
    let database = migrated_database().await;
    let process = Process::serve(&[
        ("DATABASE_URL", &database),
        ("MIGRATE_ON_START", "false"),
        ("LOG_LEVEL", "warn"),
    ]);
    process.wait_until_live().await;
    client()
        .get(format!("{}/health", process.address()))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let logs = process.logs();
    assert!(
        logs.iter()
            .all(|l| l["level"] == "warn" || l["level"] == "error"),
        "{logs:#?}"
    );
}
