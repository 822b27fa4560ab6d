//! The metrics listener (`METRICS_PORT`): off unless set, apart from the API, and what it
//! exposes.

use std::collections::BTreeMap;

use sqlx::{Connection, Executor, PgConnection};

use crate::helpers::{migrated_database, TestApp};

/// A port free a moment ago: the metrics port cannot be 0.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn with_metrics(database_url: &str) -> TestApp {
    let port = free_port();
    let app = TestApp::spawn_with(database_url, move |f| {
        f.merge(("metrics_port", port))
            .merge(("migrate_on_start", false))
    })
    .await;
    app.wait_until_ready().await;
    app
}

/// One sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// The samples of an OpenMetrics text exposition; panics on a line that is not one.
fn parse(text: &str) -> Vec<Sample> {
    assert!(text.ends_with("# EOF\n"), "no EOF marker:\n{text}");
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.starts_with("# ") {
            let kind = line.split(' ').nth(1).unwrap();
            assert!(["HELP", "TYPE", "UNIT", "EOF"].contains(&kind), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                let labels = rest
                    .split(',')
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
                        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                        (
                            k.to_owned(),
                            v.unwrap_or_else(|| panic!("{line}")).to_owned(),
                        )
                    })
                    .collect();
                (name, labels)
            }
            None => (series, BTreeMap::new()),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        samples.push((name.to_owned(), labels, value));
    }
    samples
}

/// The value of `name` with (at least) `labels`, if exposed.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

async fn scrape(app: &TestApp) -> Vec<Sample> {
    let address = app.metrics_address.as_ref().expect("a metrics listener");
    let response = app
        .client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse(&response.text().await.unwrap())
}

#[tokio::test]
async fn without_metrics_port_there_is_no_metrics_listener_and_the_api_has_no_metrics() {
    let app = TestApp::spawn().await;

    assert!(app.metrics_address.is_none());
    assert_eq!(app.get("/metrics").await.status(), 404);
}

#[tokio::test]
async fn the_metrics_listener_serves_metrics_and_nothing_of_the_api() {
    let app = with_metrics(&migrated_database().await).await;
    let metrics = app.metrics_address.clone().unwrap();

    for path in ["/health", "/api/v1/health", "/api/v1/etl/runs"] {
        let response = app
            .client
            .get(format!("{metrics}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    assert_eq!(app.get("/metrics").await.status(), 404);
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn requests_are_counted_by_route_template_method_and_status() {
    let app = with_metrics(&migrated_database().await).await;

    for _ in 0..3 {
        assert_eq!(app.get("/health").await.status(), 200);
    }
    let symbol = app.get("/api/v1/prices/ZZZZ").await.status();
    assert_eq!(app.get("/no/such/thing").await.status(), 404);
    let samples = scrape(&app).await;

    let health = [("route", "/health"), ("method", "GET"), ("status", "200")];
    assert_eq!(
        value(&samples, "sigmasight_http_requests_total", &health),
        Some(3.0)
    );
    let symbol_status = symbol.as_u16().to_string();
    let by_template = [
        ("route", "/api/v1/prices/{symbol}"),
        ("method", "GET"),
        ("status", symbol_status.as_str()),
    ];
    assert_eq!(
        value(&samples, "sigmasight_http_requests_total", &by_template),
        Some(1.0),
        "{samples:?}"
    );
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert_eq!(
        value(&samples, "sigmasight_http_requests_total", &unmatched),
        Some(1.0)
    );
    assert!(
        !samples.iter().any(|(_, l, _)| l
            .values()
            .any(|v| v.contains("ZZZZ") || v.contains("no/such"))),
        "a raw path became a label"
    );
    let route = [("route", "/health"), ("method", "GET")];
    assert_eq!(
        value(
            &samples,
            "sigmasight_http_request_duration_seconds_count",
            &route
        ),
        Some(3.0)
    );
    let inf = [("route", "/health"), ("le", "+Inf")];
    assert_eq!(
        value(
            &samples,
            "sigmasight_http_request_duration_seconds_bucket",
            &inf
        ),
        Some(3.0)
    );
    assert_eq!(
        value(&samples, "sigmasight_http_requests_in_flight", &[]),
        Some(0.0)
    );
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(
        value(&samples, "sigmasight_build_info", &version),
        Some(1.0)
    );
    let size = value(&samples, "sigmasight_db_pool_connections", &[]).unwrap();
    assert!(size >= 1.0, "the readiness check used the pool: {size}");
    assert!(value(&samples, "sigmasight_db_pool_idle_connections", &[]).is_some());
    assert_eq!(
        value(&samples, "sigmasight_db_pool_max_connections", &[]),
        Some(10.0)
    );
    assert!(value(&samples, "sigmasight_password_hash_capacity", &[]).unwrap() >= 1.0);
    assert!(value(&samples, "sigmasight_user_cache_users", &[]).is_some());
}

#[tokio::test]
async fn the_user_cache_says_whether_it_listens_and_how_many_users_it_holds() {
    let app = with_metrics(&crate::helpers::migrated_database().await).await;
    let user = app.user(sigmasight::auth::Role::User).await;
    app.user_listener().await;
    assert_eq!(
        app.get_as("/api/v1/auth/me", &user.token).await.status(),
        200
    );
    let samples = scrape(&app).await;
    assert_eq!(
        value(&samples, "sigmasight_user_cache_listening", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "sigmasight_user_cache_users", &[]),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_login_refused_by_the_limits_is_counted() {
    let app = with_metrics(&migrated_database().await).await;
    let before = scrape(&app).await;
    assert_eq!(
        value(&before, "sigmasight_login_refusals_total", &[]),
        Some(0.0)
    );

    let mut statuses = Vec::new();
    for i in 0..11 {
        let response = app.login(&format!("user-{i}@example.com"), "guess").await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let after = scrape(&app).await;

    assert_eq!(
        value(&after, "sigmasight_login_refusals_total", &[]),
        Some(1.0)
    );
    let refused = [("route", "/api/v1/auth/login"), ("status", "429")];
    assert_eq!(
        value(&after, "sigmasight_http_requests_total", &refused),
        Some(1.0)
    );
}

#[tokio::test]
async fn the_etl_last_run_is_read_from_etl_run() {
    let database = migrated_database().await;
    let app = with_metrics(&database).await;
    let none = scrape(&app).await;
    assert_eq!(
        value(&none, "sigmasight_etl_last_run_query_ok", &[]),
        Some(1.0)
    );
    assert!(value(&none, "sigmasight_etl_last_run_status", &[]).is_none());

    let mut conn = PgConnection::connect(&database).await.unwrap();
    conn.execute(
        "INSERT INTO etl_run (started_at, finished_at, status, rows_inserted, rows_updated,
                              rows_unchanged, rows_rejected)
         VALUES (now() - interval '100 seconds', now() - interval '58 seconds', 'failed', 1, 1, 1, 1),
                (now() - interval '50 seconds', now() - interval '8 seconds', 'partial', 40, 2, 5, 1)",
    )
    .await
    .unwrap();
    let samples = scrape(&app).await;

    let status = |s| value(&samples, "sigmasight_etl_last_run_status", &[("status", s)]);
    assert_eq!(status("partial"), Some(1.0));
    assert_eq!(status("failed"), Some(0.0));
    assert_eq!(status("succeeded"), Some(0.0));
    let duration = value(&samples, "sigmasight_etl_last_run_duration_seconds", &[]).unwrap();
    assert!((duration - 42.0).abs() < 0.01, "{duration}");
    let bars = |o| value(&samples, "sigmasight_etl_last_run_bars", &[("outcome", o)]);
    assert_eq!(
        [
            bars("inserted"),
            bars("updated"),
            bars("unchanged"),
            bars("rejected")
        ],
        [Some(40.0), Some(2.0), Some(5.0), Some(1.0)]
    );
    assert!(
        value(
            &samples,
            "sigmasight_etl_last_run_started_timestamp_seconds",
            &[]
        )
        .unwrap()
            > 1.7e9
    );
}

#[tokio::test]
async fn a_database_that_cannot_answer_leaves_out_the_etl_metrics_only() {
    let (app, proxy) =
        TestApp::spawn_behind_proxy(|f| f.merge(("metrics_port", free_port()))).await;
    proxy.cut();

    let samples = scrape(&app).await;

    assert_eq!(
        value(&samples, "sigmasight_etl_last_run_query_ok", &[]),
        Some(0.0)
    );
    assert!(value(&samples, "sigmasight_etl_last_run_status", &[]).is_none());
    assert!(value(&samples, "sigmasight_http_requests_in_flight", &[]).is_some());
    assert!(value(&samples, "sigmasight_build_info", &[]).is_some());
}
