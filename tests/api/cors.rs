use crate::helpers::TestApp;

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/health", app.address),
        )
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type,x-request-id",
        )
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
