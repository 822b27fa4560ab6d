use reqwest::Method;
use serde_json::{json, Value};
use sigmasight::auth::Role;

use crate::helpers::TestApp;

#[tokio::test]
async fn an_admin_adds_a_symbol_and_any_user_lists_it() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let user = app.user(Role::User).await;

    let created = app
        .send_json_as(
            Method::POST,
            "/api/v1/symbols",
            &admin.token,
            &json!({"symbol": "BRK.B", "name": "Berkshire Hathaway"}),
        )
        .await;

    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["symbol"], "BRK.B");
    assert_eq!(created["active"], true);
    let list: Value = app
        .get_as("/api/v1/symbols", &user.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["symbols"][0]["symbol"], "BRK.B");
    assert_eq!(list["symbols"][0]["name"], "Berkshire Hathaway");
}

#[tokio::test]
async fn a_duplicate_symbol_is_a_409() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let body = json!({"symbol": "AAPL"});
    let first = app
        .send_json_as(Method::POST, "/api/v1/symbols", &admin.token, &body)
        .await;
    assert_eq!(first.status(), 201);

    let second = app
        .send_json_as(Method::POST, "/api/v1/symbols", &admin.token, &body)
        .await;

    assert_eq!(second.status(), 409);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["error"]["code"], "conflict");
}

#[tokio::test]
async fn a_bad_ticker_or_body_is_a_422() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;

    for body in [
        json!({"symbol": "aapl"}),
        json!({"symbol": ""}),
        json!({"symbol": "A B"}),
        json!({"symbol": "ABCDEFGHIJKLMNOPQRSTU"}),
        json!({"symbol": "AAPL", "exchange": "NASDAQ"}),
        json!({"symbol": "AAPL", "name": "x".repeat(201)}),
        json!({"name": "no symbol"}),
    ] {
        let response = app
            .send_json_as(Method::POST, "/api/v1/symbols", &admin.token, &body)
            .await;
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "validation_failed");
    }
}

#[tokio::test]
async fn a_user_cannot_add_symbols_and_nobody_can_without_a_token() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;

    let forbidden = app
        .send_json_as(
            Method::POST,
            "/api/v1/symbols",
            &user.token,
            &json!({"symbol": "AAPL"}),
        )
        .await;
    let anonymous = app.get("/api/v1/symbols").await;

    assert_eq!(forbidden.status(), 403);
    let body: Value = forbidden.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(anonymous.status(), 401);
}
