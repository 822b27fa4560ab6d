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

/// One request on `stream` (kept alive unless the server says otherwise); the response's head,
/// lower-cased, and its body.
async fn exchange(stream: &mut tokio::net::TcpStream, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .expect("send the request");
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.expect("read the response");
        assert!(n > 0, "the connection closed with no (whole) response");
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let head = head.to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if body.len() >= length {
                return (head, body.to_owned());
            }
        }
    }
}

/// The app with a drain of `drain_seconds`, ready.
async fn app_draining_for(drain_seconds: u64) -> crate::helpers::TestApp {
    let app = crate::helpers::TestApp::spawn_with(&migrated_database().await, |f| {
        f.merge(("migrate_on_start", false))
            .merge(("shutdown_drain_seconds", drain_seconds))
    })
    .await;
    app.wait_until_ready().await;
    app
}

#[tokio::test]
async fn during_the_drain_readiness_is_503_while_new_connections_are_still_served_and_closed_after_their_response(
) {
    let mut app = app_draining_for(3).await;
    let address = app.address.clone();

    app.begin_stop();

    // A balancer's health check now takes the replica out...
    let readiness = crate::helpers::poll(Duration::from_secs(2), || async {
        client()
            .get(format!("{address}/api/v1/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 503)
    })
    .await;
    assert!(
        readiness,
        "readiness did not turn 503 at the shutdown signal"
    );
    // ...while whatever it still sends is answered, and tells it to close the connection.
    let response = client()
        .get(format!("{address}/health"))
        .send()
        .await
        .expect("a new connection is still accepted during the drain");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("connection")
            .map(|v| v.to_str().unwrap()),
        Some("close")
    );

    app.stop().await.expect("a clean stop");
    assert!(
        client()
            .get(format!("{address}/health"))
            .send()
            .await
            .is_err(),
        "still accepting after the drain"
    );
}

#[tokio::test]
async fn a_request_on_a_kept_alive_connection_during_the_drain_gets_its_answer_with_connection_close(
) {
    use tokio::io::AsyncReadExt;
    let mut app = app_draining_for(2).await;
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect");
    let (head, _) = exchange(&mut stream, "/health").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");

    app.begin_stop();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The connection the balancer holds is still served, not closed under it.
    let (head, body) = exchange(&mut stream, "/health").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert_eq!(body, r#"{"status":"ok"}"#);
    // And then closed by the server, the client having been told.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0))),
        "the connection stayed open after Connection: close"
    );
    app.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn without_a_drain_delay_the_server_stops_accepting_at_once() {
    let mut app = app_draining_for(0).await;
    let address = app.address.clone();
    let started = std::time::Instant::now();
    app.begin_stop();
    app.stop().await.expect("a clean stop");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the stop waited {:?} with SHUTDOWN_DRAIN_SECONDS=0",
        started.elapsed()
    );
    assert!(client()
        .get(format!("{address}/health"))
        .send()
        .await
        .is_err());
}
