//! What a connection may cost: a client that sends half a request is cut off after
//! `HEADER_READ_TIMEOUT_SECONDS`, and at most `MAX_CONNECTIONS` are open at once.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{client, migrated_database, TestApp};

/// The app with `header_read_timeout_seconds` and `max_connections`, bound and not yet
/// connected to (its database is migrated already).
async fn app_with(header_read_timeout_seconds: u64, max_connections: u64) -> TestApp {
    TestApp::spawn_with(&migrated_database().await, |f| {
        f.merge(("header_read_timeout_seconds", header_read_timeout_seconds))
            .merge(("max_connections", max_connections))
            .merge(("migrate_on_start", false))
    })
    .await
}

/// A connection that has sent the start of a request and never its end.
async fn half_a_request(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .expect("send half a request");
    stream
}

/// Whether the server closed `stream` within `within` (anything it sends first, such as an
/// error response, is read and discarded).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn eight_hundred_half_sent_requests_are_cut_off_after_the_header_timeout_and_the_service_keeps_answering(
) {
    let app = app_with(2, 4096).await;
    let first_opened = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..800 {
        slow.push(half_a_request(&app).await);
    }

    // While they hang, others are served.
    assert_eq!(app.get("/health").await.status(), 200);
    // The first is closed, and not before its 2 s (the server's clock for it starts no earlier
    // than this test's: timed from here, the check holds however long opening 800 took).
    assert!(
        closed_within(&mut slow[0], Duration::from_secs(10)).await,
        "the first half-sent request was never cut off"
    );
    let after = first_opened.elapsed();
    assert!(
        after >= Duration::from_millis(1900),
        "cut off after {after:?}, before the 2 s header timeout"
    );

    let mut still_open = 0;
    for stream in &mut slow {
        if !closed_within(stream, Duration::from_secs(5)).await {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open, 0,
        "connections left open past the header timeout"
    );
    // On a new connection: the client's pooled one from the first request sat idle past the
    // header timeout, which closes idle keep-alive connections too, and reusing it could race
    // with that close.
    let fresh = client()
        .get(format!("{}/api/v1/health", app.address))
        .send()
        .await
        .expect("a response on a new connection");
    assert_eq!(fresh.status(), 200);
}

#[tokio::test]
async fn past_the_connection_limit_a_client_waits_until_a_connection_closes() {
    let app = app_with(60, 2).await;
    let first = half_a_request(&app).await;
    let _second = half_a_request(&app).await;
    // Accepted connections hold both places (the loop accepts one at a time).
    tokio::time::sleep(Duration::from_millis(200)).await;

    let waiting = {
        let url = format!("{}/health", app.address);
        tokio::spawn(async move { client().get(url).send().await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "served past the connection limit");

    drop(first);
    let response = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a place was free")
        .unwrap()
        .expect("a response");
    assert_eq!(response.status(), 200);
}
