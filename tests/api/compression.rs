use std::io::Read;

use sigmasight::auth::Role;
use sigmasight::http::compression::MIN_COMPRESSED_BYTES;

use crate::helpers::{TestApp, TestUser};

/// A bar list of 30 bars (about 4 kB of JSON, well over the threshold).
const LONG: &str = "/api/v1/prices/AAPL?limit=30";

async fn app_with_a_long_bar_list() -> (TestApp, TestUser) {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    app.insert_bars("AAPL", 30).await;
    (app, user)
}

/// GET `path` with `token`, and `Accept-Encoding: accept` unless it is `None`.
async fn get(
    app: &TestApp,
    path: &str,
    token: &str,
    accept: Option<&str>,
) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = app.authed(reqwest::Method::GET, path, token);
    if let Some(accept) = accept {
        request = request.header("accept-encoding", accept);
    }
    let response = request.send().await.expect("request");
    assert_eq!(response.status(), 200, "{path} ({accept:?})");
    let headers = response.headers().clone();
    (headers, response.bytes().await.unwrap().to_vec())
}

fn content_encoding(headers: &reqwest::header::HeaderMap) -> Option<&str> {
    headers.get("content-encoding").map(|v| v.to_str().unwrap())
}

fn varies_by_accept_encoding(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get_all("vary")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .any(|name| name.trim().eq_ignore_ascii_case("accept-encoding"))
}

fn decode(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .expect("a gzip stream");
        }
        "br" => {
            brotli::Decompressor::new(bytes, 4096)
                .read_to_end(&mut out)
                .expect("a brotli stream");
        }
        "zstd" => out = zstd::stream::decode_all(bytes).expect("a zstd stream"),
        other => panic!("unexpected encoding {other}"),
    }
    out
}

#[tokio::test]
async fn gzip_br_and_zstd_are_each_negotiated_and_decode_to_the_identical_json() {
    let (app, user) = app_with_a_long_bar_list().await;

    for path in [LONG, "/api/v1/openapi.json"] {
        let (plain_headers, plain) = get(&app, path, &user.token, None).await;
        assert_eq!(content_encoding(&plain_headers), None, "{path}");
        assert!(plain.len() >= usize::from(MIN_COMPRESSED_BYTES), "{path}");
        serde_json::from_slice::<serde_json::Value>(&plain).expect("JSON");

        for encoding in ["gzip", "br", "zstd"] {
            let (headers, body) = get(&app, path, &user.token, Some(encoding)).await;

            assert_eq!(content_encoding(&headers), Some(encoding), "{path}");
            assert!(varies_by_accept_encoding(&headers), "{path} {encoding}");
            assert!(
                body.len() < plain.len() / 2,
                "{path} {encoding}: {} of {} bytes",
                body.len(),
                plain.len()
            );
            assert_eq!(decode(encoding, &body), plain, "{path} {encoding}");
        }
    }
}

#[tokio::test]
async fn q_values_pick_the_encoding_and_identity_or_no_header_gets_the_body_as_it_is() {
    let (app, user) = app_with_a_long_bar_list().await;
    let (_, plain) = get(&app, LONG, &user.token, None).await;

    for (accept, expected) in [
        (None, None),
        (Some("identity"), None),
        (Some("identity;q=1, gzip;q=0.5"), None),
        (Some("gzip;q=0, br;q=0, zstd;q=0"), None),
        (Some("deflate"), None),
        (Some("gzip;q=1.0, br;q=0.5"), Some("gzip")),
        (Some("gzip;q=0.2, br;q=0.8, zstd;q=0.5"), Some("br")),
        (Some("br;q=0.1, zstd"), Some("zstd")),
        // What browsers send: equal weights, zstd first, then br, then gzip.
        (Some("gzip, deflate, br, zstd"), Some("zstd")),
        (Some("gzip, deflate, br"), Some("br")),
    ] {
        let (headers, body) = get(&app, LONG, &user.token, accept).await;

        assert_eq!(content_encoding(&headers), expected, "{accept:?}");
        assert!(varies_by_accept_encoding(&headers), "{accept:?}");
        let decoded = match expected {
            Some(encoding) => decode(encoding, &body),
            None => body,
        };
        assert_eq!(decoded, plain, "{accept:?}");
    }
}

#[tokio::test]
async fn small_bodies_are_sent_as_they_are() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    app.insert_bar("AAPL", "2025-01-02", "187.4425").await;
    let everything = Some("gzip, br, zstd");

    let health = app
        .client
        .get(format!("{}/health", app.address))
        .header("accept-encoding", "gzip, br, zstd")
        .send()
        .await
        .unwrap();
    let unauthorized = app
        .client
        .get(format!("{}/api/v1/prices/AAPL", app.address))
        .header("accept-encoding", "gzip, br, zstd")
        .send()
        .await
        .unwrap();
    let (one_bar, body) = get(&app, "/api/v1/prices/AAPL", &user.token, everything).await;

    assert_eq!(content_encoding(health.headers()), None);
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(content_encoding(unauthorized.headers()), None);
    assert!(
        body.len() < usize::from(MIN_COMPRESSED_BYTES),
        "{}",
        body.len()
    );
    assert_eq!(content_encoding(&one_bar), None);
    // Sent as it is now, encoded once the list grows: the answer varies all the same.
    assert!(varies_by_accept_encoding(&one_bar));
    assert_eq!(
        one_bar["content-length"].to_str().unwrap(),
        body.len().to_string()
    );
}

#[tokio::test]
async fn the_weak_etag_is_the_same_in_every_encoding_and_each_gets_its_304() {
    let (app, user) = app_with_a_long_bar_list().await;
    let (plain, _) = get(&app, LONG, &user.token, None).await;
    let etag = plain["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");

    for accept in [None, Some("gzip"), Some("br"), Some("zstd")] {
        let (headers, _) = get(&app, LONG, &user.token, accept).await;
        assert_eq!(headers["etag"], etag.as_str(), "{accept:?}");

        let mut conditional = app
            .authed(reqwest::Method::GET, LONG, &user.token)
            .header("if-none-match", &etag);
        if let Some(accept) = accept {
            conditional = conditional.header("accept-encoding", accept);
        }
        let not_modified = conditional.send().await.unwrap();

        assert_eq!(not_modified.status(), 304, "{accept:?}");
        assert_eq!(not_modified.headers()["etag"], etag.as_str(), "{accept:?}");
        assert_eq!(content_encoding(not_modified.headers()), None, "{accept:?}");
        assert!(
            varies_by_accept_encoding(not_modified.headers()),
            "{accept:?}"
        );
        assert!(not_modified.bytes().await.unwrap().is_empty());
    }
    // The tag sent back without its `W/` (as some clients strip it) still matches.
    let stripped = app
        .authed(reqwest::Method::GET, LONG, &user.token)
        .header("if-none-match", etag.trim_start_matches("W/"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(stripped.status(), 304);
}
