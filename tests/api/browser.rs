//! A real browser calls the API from a page on another origin: headless Chromium loads a page
//! from a second server on another port, its script calls the API with `fetch` and writes what it
//! could read into the page, and the test reads the page back (`--dump-dom`).
//!
//! Skipped, with a message, when no Chromium is installed, unless `BROWSER_TESTS=required`.
//! `CHROMIUM` names the browser's program when it is not `chromium`, `chromium-browser` or
//! `google-chrome` on `PATH`.

use std::path::PathBuf;
use std::time::Duration;

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use sigmasight::auth::Role;
use tokio::net::TcpListener;

use crate::helpers::{fresh_database, TestApp};

/// The page's script: each step records its outcome (or the error `fetch` threw, as a failed
/// preflight does) and the last one writes them all into `#outcome` as JSON.
const SCRIPT: &str = r#"
async function step(run) {
  try { return await run(); } catch (e) { return { error: String(e) }; }
}
async function main() {
  const bearer = { Authorization: 'Bearer ' + TOKEN };
  const outcome = {};
  let etag = null;
  outcome.bars = await step(async () => {
    const r = await fetch(API + '/api/v1/prices/AAPL', { headers: bearer });
    etag = r.headers.get('ETag');
    const count = (await r.json()).bars.length;
    return { status: r.status, etag, requestId: r.headers.get('X-Request-ID'), count };
  });
  outcome.conditional = await step(async () => {
    const r = await fetch(API + '/api/v1/prices/AAPL', {
      headers: { ...bearer, 'If-None-Match': etag }, cache: 'no-store' });
    return { status: r.status, etag: r.headers.get('ETag') };
  });
  outcome.unauthorized = await step(async () => {
    const r = await fetch(API + '/api/v1/auth/me');
    return { status: r.status, wwwAuthenticate: r.headers.get('WWW-Authenticate') };
  });
  outcome.limited = await step(async () => {
    const body = JSON.stringify({ email: 'nobody-' + Date.now() + '@example.com',
                                  password: 'not the password' });
    for (let attempt = 1; attempt <= 30; attempt++) {
      const r = await fetch(API + '/api/v1/auth/login', { method: 'POST', body,
        headers: { 'Content-Type': 'application/json' } });
      if (r.status !== 401) {
        return { status: r.status, attempt, retryAfter: r.headers.get('Retry-After') };
      }
    }
    return { status: 401, attempt: 30 };
  });
  document.getElementById('outcome').textContent = JSON.stringify(outcome);
}
main();
"#;

/// The page, for an API at `api` and a user's `token` (JSON strings are JavaScript literals).
fn page(api: &str, token: &str) -> String {
    let (api, token) = (Value::from(api), Value::from(token));
    format!(
        "<!doctype html><html><body><pre id=\"outcome\"></pre><script>\n\
         const API = {api}; const TOKEN = {token};\n{SCRIPT}</script></body></html>"
    )
}

/// The browser to run: `CHROMIUM`, else the first of the usual names on `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(program) = std::env::var_os("CHROMIUM") {
        return Some(program.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| {
            ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name))
        })
        .find(|candidate| candidate.is_file())
}

/// Loads `url` in a fresh headless profile and returns the page as it stands once its script
/// has settled (network waits do not count against the virtual time budget).
async fn dump_dom(browser: &PathBuf, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(browser)
        .args([
            "--headless",
            // Chromium refuses to run as root with its sandbox; CI runs as root.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-proxy-server",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the browser did not finish within 60 s")
        .expect("start the browser");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the browser failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// What the page's script wrote into `#outcome`.
fn outcome(dom: &str) -> Value {
    let text = dom
        .split_once("<pre id=\"outcome\">")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(text, _)| text)
        .unwrap_or_else(|| panic!("no #outcome in the page: {dom}"));
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the script wrote no outcome ({e}); the page: {dom}"))
}

/// Serves `html` at `/` from `listener` until the test ends.
fn serve_page(listener: TcpListener, html: String) {
    let page = Router::new().route("/", get(move || async move { Html(html) }));
    tokio::spawn(async move { axum::serve(listener, page).await });
}

#[tokio::test]
async fn a_page_on_another_origin_reads_compressed_bars_their_etag_304_and_the_error_headers() {
    let Some(browser) = chromium() else {
        if std::env::var("BROWSER_TESTS").as_deref() == Ok("required") {
            panic!("BROWSER_TESTS=required but no Chromium was found (apt-get install chromium, or set CHROMIUM)");
        }
        println!("skipped: no Chromium on PATH (apt-get install chromium, or set CHROMIUM)");
        return;
    };
    // The page's origin differs from the API's by its port.
    let page_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page_origin = format!("http://{}", page_listener.local_addr().unwrap());
    let app = TestApp::spawn_with(&fresh_database().await, |f| {
        f.merge(("cors_allowed_origins", page_origin.as_str()))
    })
    .await;
    app.wait_until_ready().await;
    let user = app.user(Role::User).await;
    // Enough bars for a compressed answer: the browser asks for one itself (`Accept-Encoding`
    // is the browser's to set) and its script reads the decoded list.
    app.insert_bars("AAPL", 30).await;
    let served = app
        .authed(reqwest::Method::GET, "/api/v1/prices/AAPL", &user.token)
        .header("accept-encoding", "gzip, deflate, br, zstd")
        .send()
        .await
        .unwrap();
    assert!(served.headers().contains_key("content-encoding"));
    let etag = served.headers()["etag"].to_str().unwrap().to_owned();
    serve_page(page_listener, page(&app.address, &user.token));

    let dom = dump_dom(&browser, &format!("{page_origin}/")).await;

    let outcome = outcome(&dom);
    let bars = &outcome["bars"];
    assert_eq!(bars["status"], 200, "{outcome}");
    assert_eq!(
        bars["etag"],
        etag.as_str(),
        "the script reads the ETag: {outcome}"
    );
    assert!(bars["requestId"].is_string(), "{outcome}");
    assert_eq!(
        bars["count"], 30,
        "the script reads the decoded bars: {outcome}"
    );
    let conditional = &outcome["conditional"];
    assert_eq!(conditional["status"], 304, "{outcome}");
    assert_eq!(conditional["etag"], etag.as_str(), "{outcome}");
    assert_eq!(outcome["unauthorized"]["status"], 401, "{outcome}");
    assert_eq!(
        outcome["unauthorized"]["wwwAuthenticate"], "Bearer",
        "{outcome}"
    );
    let limited = &outcome["limited"];
    assert_eq!(limited["status"], 429, "{outcome}");
    let retry_after: u64 = limited["retryAfter"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("the script reads Retry-After: {outcome}"));
    assert!(retry_after > 0, "{outcome}");
}
