use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::TestApp;

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    preflight_with(app, origin, "authorization,content-type,x-request-id").await
}

/// A preflight from `origin` for a POST that would send `headers` (comma-separated).
async fn preflight_with(app: &TestApp, origin: &str, headers: &str) -> reqwest::Response {
    app.client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/health", app.address),
        )
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_granted_with_the_api_headers() {
    let app = TestApp::spawn().await;

    let response = preflight(&app, "http://localhost:3000").await;

    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in ["authorization", "content-type", "x-request-id"] {
        assert!(allowed.contains(header), "{header} not in {allowed}");
    }
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    assert!(
        headers.contains_key("x-request-id"),
        "preflights carry a request id too"
    );
}

#[tokio::test]
async fn a_preflight_from_another_origin_gets_no_grant() {
    let app = TestApp::spawn().await;

    let response = preflight(&app, "https://evil.example.com").await;

    assert!(!response
        .headers()
        .contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn configured_origins_replace_the_defaults_and_the_request_id_is_exposed() {
    let database = crate::helpers::fresh_database().await;
    let app = TestApp::spawn_with(&database, |f| {
        f.merge(("cors_allowed_origins", "https://app.example.com"))
    })
    .await;
    app.wait_until_ready().await;

    let response = app
        .client
        .get(format!("{}/health", app.address))
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");

    let default_origin = preflight(&app, "http://localhost:3000").await;
    assert!(!default_origin
        .headers()
        .contains_key("access-control-allow-origin"));
}

fn vary_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test]
async fn every_response_varies_by_origin_and_only_cors_requests_get_cors_headers() {
    let app = TestApp::spawn().await;

    let plain = app.get("/health").await;
    let cross_origin = app
        .client
        .get(format!("{}/health", app.address))
        .header("Origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();

    for response in [&plain, &cross_origin] {
        let vary = vary_of(response);
        for header in [
            "origin",
            "access-control-request-method",
            "access-control-request-headers",
        ] {
            assert!(vary.contains(header), "{header} not in Vary: {vary}");
        }
    }
    assert!(
        plain
            .headers()
            .keys()
            .all(|name| !name.as_str().starts_with("access-control-")),
        "{:?}",
        plain.headers()
    );
    assert_eq!(
        cross_origin.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
}

/// The names, lower-cased, of a comma-separated header such as `Access-Control-Allow-Headers`.
fn names_in(response: &reqwest::Response, header: &str) -> BTreeSet<String> {
    response.headers()[header]
        .to_str()
        .unwrap()
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect()
}

/// The headers the OpenAPI document declares, lower-cased: those a client sends (header
/// parameters) and those it may read (response headers).
fn declared_headers(document: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut sent, mut read) = (BTreeSet::new(), BTreeSet::new());
    let operations = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values());
    for operation in operations {
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] == "header" {
                sent.insert(parameter["name"].as_str().unwrap().to_ascii_lowercase());
            }
        }
        for response in operation["responses"]
            .as_object()
            .into_iter()
            .flat_map(|r| r.values())
        {
            for (name, _) in response["headers"].as_object().into_iter().flatten() {
                read.insert(name.to_ascii_lowercase());
            }
        }
    }
    (sent, read)
}

/// Response headers a script may read without being told (the Fetch standard's safelist).
const SAFELISTED_RESPONSE_HEADERS: [&str; 7] = [
    "cache-control",
    "content-language",
    "content-length",
    "content-type",
    "expires",
    "last-modified",
    "pragma",
];

#[tokio::test]
async fn a_browser_may_send_and_read_every_header_the_openapi_document_declares() {
    let app = TestApp::spawn().await;
    let document: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let (sent, read) = declared_headers(&document);
    assert!(sent.contains("if-none-match"), "{sent:?}");
    for header in ["etag", "www-authenticate", "retry-after"] {
        assert!(read.contains(header), "{header} not declared: {read:?}");
    }

    let requested = sent.iter().cloned().collect::<Vec<_>>().join(",");
    let preflight = preflight_with(&app, "http://localhost:3000", &requested).await;
    let allowed = names_in(&preflight, "access-control-allow-headers");
    let response = app
        .client
        .get(format!("{}/health", app.address))
        .header("Origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    let exposed = names_in(&response, "access-control-expose-headers");

    assert!(preflight.status().is_success(), "{}", preflight.status());
    let refused: Vec<_> = sent.difference(&allowed).collect();
    assert!(
        refused.is_empty(),
        "not allowed: {refused:?} (allowed: {allowed:?})"
    );
    let hidden: Vec<_> = read
        .iter()
        .filter(|h| !SAFELISTED_RESPONSE_HEADERS.contains(&h.as_str()))
        .filter(|h| !exposed.contains(*h))
        .collect();
    assert!(
        hidden.is_empty(),
        "not exposed: {hidden:?} (exposed: {exposed:?})"
    );
}
