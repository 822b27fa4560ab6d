use crate::helpers::TestApp;

fn is_uuid_v4(value: &str) -> bool {
    uuid::Uuid::parse_str(value).is_ok_and(|id| id.get_version_num() == 4)
}

#[tokio::test]
async fn a_request_without_an_id_gets_a_new_uuid_v4() {
    let app = TestApp::spawn().await;

    let response = app.get("/health").await;

    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(is_uuid_v4(id), "{id}");
}

#[tokio::test]
async fn a_sane_caller_id_is_kept_on_success_and_on_errors() {
    let app = TestApp::spawn().await;

    for path in ["/health", "/no/such/route"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .header("X-Request-ID", "trace-42.abc_DEF")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["x-request-id"],
            "trace-42.abc_DEF",
            "{path}"
        );
        if response.status() == 404 {
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"]["request_id"], "trace-42.abc_DEF");
        }
    }
}

#[tokio::test]
async fn a_malformed_caller_id_is_replaced() {
    let app = TestApp::spawn().await;
    let too_long = "x".repeat(129);

    for bad in [too_long.as_str(), "has spaces in it", ""] {
        let response = app
            .client
            .get(format!("{}/health", app.address))
            .header("X-Request-ID", bad)
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert!(is_uuid_v4(id), "{bad:?} was answered with {id:?}");
    }
}
