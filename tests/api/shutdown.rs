use std::time::Duration;

use crate::helpers::{client, migrated_database, DbProxy, Process};

#[tokio::test]
async fn an_in_flight_request_completes_after_sigterm_and_the_process_exits_0() {
    let database = migrated_database().await;
    let proxy = DbProxy::start(&database).await;
    let mut process = Process::serve(&[
        ("DATABASE_URL", &proxy.url(&database)),
        ("MIGRATE_ON_START", "false"),
    ]);
    process.wait_until_live().await;
    let readiness = format!("{}/api/v1/health", process.address());
    assert_eq!(client().get(&readiness).send().await.unwrap().status(), 200);

    // A request that takes about a second because the database answers slowly.
    proxy.slow_down(Duration::from_millis(400));
    let in_flight = tokio::spawn(async move { client().get(&readiness).send().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    process.terminate();

    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was answered");
    assert_eq!(response.status(), 200);
    let status = process.wait(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0));
    process
        .wait_for_log(|l| l["message"] == "shutdown complete")
        .await;
    process
        .wait_for_log(|l| l["message"] == "shutdown requested" && l["signal"] == "SIGTERM")
        .await;
}

#[tokio::test]
async fn new_connections_are_refused_once_draining_starts() {
    let database = migrated_database().await;
    let mut process = Process::serve(&[("DATABASE_URL", &database), ("MIGRATE_ON_START", "false")]);
    process.wait_until_live().await;

    process.terminate();
    process.wait(Duration::from_secs(10)).await;

    let result = client()
        .get(format!("{}/health", process.address()))
        .send()
        .await;
    assert!(result.is_err(), "still answering after shutdown");
}

#[tokio::test]
async fn requests_still_running_after_the_grace_period_are_cut_off() {
    let database = migrated_database().await;
    let proxy = DbProxy::start(&database).await;
    let mut process = Process::serve(&[
        ("DATABASE_URL", &proxy.url(&database)),
        ("MIGRATE_ON_START", "false"),
        ("SHUTDOWN_GRACE_SECONDS", "0"),
    ]);
    process.wait_until_live().await;
    let readiness = format!("{}/api/v1/health", process.address());
    assert_eq!(client().get(&readiness).send().await.unwrap().status(), 200);

    // Readiness now waits its full 2 s for the database; the grace period is 0 s.
    proxy.slow_down(Duration::from_secs(60));
    let in_flight = tokio::spawn(async move { client().get(&readiness).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    process.terminate();

    let status = process.wait(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0));
    assert!(
        in_flight.await.unwrap().is_err(),
        "the request was answered, so the process waited past its grace period"
    );
    process
        .wait_for_log(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("grace period elapsed"))
        })
        .await;
}

#[tokio::test]
async fn a_stopped_app_has_closed_its_database_connections() {
    let app = crate::helpers::TestApp::spawn().await;
    let name = url::Url::parse(&app.database_url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
            .bind(&name)
            .fetch_one(&mut crate::helpers::connect(&crate::helpers::admin_url()).await)
            .await
            .unwrap()
    };
    assert!(count().await > 0, "the app holds a pooled connection");

    app.stop().await.expect("a clean stop");

    let closed =
        crate::helpers::poll(Duration::from_secs(5), || async { count().await == 0 }).await;
    assert!(closed, "connections left open after stop");
}
