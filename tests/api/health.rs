use std::time::Duration;

use serde_json::Value;

use crate::helpers::{migrated_database, poll, DbProxy, TestApp};

#[tokio::test]
async fn liveness_answers_ok_without_touching_the_database() {
    // Arrange: a database URL where nothing listens.
    let app = TestApp::spawn_with("postgres://nobody@127.0.0.1:9/nothing", |f| {
        f.merge(("migrate_on_start", false))
    })
    .await;

    let response = app.get("/health").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn readiness_reports_database_migrations_version_and_commit() {
    let app = TestApp::spawn().await;

    let response = app.get("/api/v1/health").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["migrations"], "applied");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["commit"].as_str().is_some_and(|c| !c.is_empty()));
}

#[tokio::test]
async fn readiness_is_503_while_the_database_is_unreachable_and_recovers_without_a_restart() {
    let (app, proxy) = TestApp::spawn_behind_proxy(|f| f).await;

    proxy.cut();
    let response = app.get("/api/v1/health").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["database"], "unreachable");
    for key in ["migrations", "version", "commit"] {
        assert!(body.get(key).is_some(), "503 body lacks {key}: {body}");
    }
    assert_eq!(app.get("/health").await.status(), 200, "liveness stays up");

    proxy.restore();
    let recovered = poll(Duration::from_secs(10), || async {
        app.get("/api/v1/health").await.status() == 200
    })
    .await;
    assert!(
        recovered,
        "readiness did not return to 200 after the database came back"
    );
}

#[tokio::test]
async fn readiness_gives_up_on_a_hanging_database_after_its_own_short_timeout() {
    let (app, proxy) = TestApp::spawn_behind_proxy(|f| f).await;

    proxy.slow_down(Duration::from_secs(20));
    let started = std::time::Instant::now();
    let response = app.get("/api/v1/health").await;

    assert_eq!(response.status(), 503);
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "readiness waited {elapsed:?}, as if bound by the 30 s pool timeout"
    );
}

#[tokio::test]
async fn start_up_migrations_wait_for_the_database_and_readiness_follows() {
    // Arrange: an empty database behind a proxy that is cut before the app starts.
    let database = crate::helpers::fresh_database().await;
    let proxy = DbProxy::start(&database).await;
    proxy.cut();
    let app = TestApp::spawn_with(&proxy.url(&database), |f| f).await;

    assert_eq!(
        app.get("/health").await.status(),
        200,
        "live while the database is down"
    );
    let body: Value = app.get("/api/v1/health").await.json().await.unwrap();
    assert_eq!(body["migrations"], "pending");

    proxy.restore();
    app.wait_until_ready().await;
    let body: Value = app.get("/api/v1/health").await.json().await.unwrap();
    assert_eq!(body["migrations"], "applied");
}

#[tokio::test]
async fn the_binary_listens_on_ipv4_and_ipv6_and_its_healthcheck_agrees() {
    let database = migrated_database().await;
    let process = crate::helpers::Process::serve(&[
        ("DATABASE_URL", &database),
        ("MIGRATE_ON_START", "false"),
    ]);
    process.wait_until_live().await;

    let client = crate::helpers::client();
    for host in ["127.0.0.1", "[::1]"] {
        let response = client
            .get(format!("http://{host}:{}/health", process.port))
            .send()
            .await
            .unwrap_or_else(|e| panic!("no answer on {host}: {e}"));
        assert_eq!(response.status(), 200, "{host}");
    }

    let port = process.port.to_string();
    let healthy = crate::helpers::run_binary(&["healthcheck"], &[("PORT", &port)]);
    assert!(healthy.status.success(), "{healthy:?}");
}

#[tokio::test]
async fn the_healthcheck_fails_when_nothing_answers() {
    let port = crate::helpers::free_port().to_string();

    let output = crate::helpers::run_binary(&["healthcheck"], &[("PORT", &port)]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unhealthy"), "{stderr}");
}
