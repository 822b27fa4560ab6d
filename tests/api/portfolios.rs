use reqwest::Method;
use serde_json::{json, Value};
use sigmasight::auth::Role;

use crate::helpers::{TestApp, TestUser};

async fn new_portfolio(app: &TestApp, user: &TestUser, name: &str) -> String {
    let response = app
        .send_json_as(
            Method::POST,
            "/api/v1/portfolios",
            &user.token,
            &json!({"name": name}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn add_position(
    app: &TestApp,
    user: &TestUser,
    portfolio: &str,
    body: Value,
) -> reqwest::Response {
    app.send_json_as(
        Method::POST,
        &format!("/api/v1/portfolios/{portfolio}/positions"),
        &user.token,
        &body,
    )
    .await
}

#[tokio::test]
async fn a_portfolio_is_created_listed_renamed_and_deleted() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let id = new_portfolio(&app, &user, "  Retirement ").await;

    let list: Value = app
        .get_as("/api/v1/portfolios", &user.token)
        .await
        .json()
        .await
        .unwrap();
    let renamed = app
        .send_json_as(
            Method::PATCH,
            &format!("/api/v1/portfolios/{id}"),
            &user.token,
            &json!({"name": "Pension"}),
        )
        .await;
    let shown: Value = app
        .get_as(&format!("/api/v1/portfolios/{id}"), &user.token)
        .await
        .json()
        .await
        .unwrap();
    let deleted = app
        .authed(
            Method::DELETE,
            &format!("/api/v1/portfolios/{id}"),
            &user.token,
        )
        .send()
        .await
        .unwrap();
    let gone = app
        .get_as(&format!("/api/v1/portfolios/{id}"), &user.token)
        .await;

    assert_eq!(list["portfolios"][0]["name"], "Retirement");
    assert_eq!(renamed.status(), 200);
    assert_eq!(shown["name"], "Pension");
    assert_eq!(deleted.status(), 204);
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn a_duplicate_name_is_a_409_and_a_bad_name_or_body_a_422() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    new_portfolio(&app, &user, "Core").await;

    let duplicate = app
        .send_json_as(
            Method::POST,
            "/api/v1/portfolios",
            &user.token,
            &json!({"name": "Core"}),
        )
        .await;

    assert_eq!(duplicate.status(), 409);
    for body in [
        json!({"name": ""}),
        json!({"name": "x".repeat(101)}),
        json!({"name": "Core 2", "owner": "someone"}),
        json!({"name": 5}),
    ] {
        let response = app
            .send_json_as(Method::POST, "/api/v1/portfolios", &user.token, &body)
            .await;
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "validation_failed");
    }
}

#[tokio::test]
async fn another_users_portfolio_is_a_404_for_every_route() {
    let app = TestApp::spawn().await;
    let owner = app.user(Role::User).await;
    let other = app.user(Role::User).await;
    let id = new_portfolio(&app, &owner, "Mine").await;
    let position: Value = add_position(
        &app,
        &owner,
        &id,
        json!({"symbol": "AAPL", "quantity": "1", "cost_basis": "1", "opened_at": "2024-01-02"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let position_id = position["id"].as_str().unwrap();

    let list: Value = app
        .get_as("/api/v1/portfolios", &other.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["portfolios"], json!([]));
    for path in [
        format!("/api/v1/portfolios/{id}"),
        format!("/api/v1/portfolios/{id}/positions"),
        format!("/api/v1/portfolios/{id}/positions/{position_id}"),
        format!("/api/v1/portfolios/{id}/summary"),
    ] {
        let response = app.get_as(&path, &other.token).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
    let delete = app
        .authed(
            Method::DELETE,
            &format!("/api/v1/portfolios/{id}"),
            &other.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 404);
    let rename = app
        .send_json_as(
            Method::PATCH,
            &format!("/api/v1/portfolios/{id}"),
            &other.token,
            &json!({"name": "Stolen"}),
        )
        .await;
    assert_eq!(rename.status(), 404);
    assert_eq!(
        app.get_as(&format!("/api/v1/portfolios/{id}"), &owner.token)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_malformed_uuid_is_a_422_in_the_error_format() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;

    for path in [
        "/api/v1/portfolios/not-a-uuid",
        "/api/v1/portfolios/not-a-uuid/summary",
        "/api/v1/portfolios/00000000-0000-0000-0000-000000000000/positions/xyz",
    ] {
        let response = app.get_as(path, &user.token).await;
        assert_eq!(response.status(), 422, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "validation_failed");
    }
}

#[tokio::test]
async fn positions_are_added_read_replaced_and_deleted_with_exact_decimals() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let id = new_portfolio(&app, &user, "Core").await;

    let created = add_position(
        &app,
        &user,
        &id,
        json!({"symbol": "BRK.B", "quantity": 0.12345678, "cost_basis": "360.500000", "opened_at": "2024-03-15"}),
    )
    .await;
    // A JSON number, which the document does not allow (`type: string`), is refused.
    assert_eq!(created.status(), 422);
    let body: Value = created.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("quantity: expected a decimal as a JSON string"),
        "{body}"
    );
    let created = add_position(
        &app,
        &user,
        &id,
        json!({"symbol": "BRK.B", "quantity": "0.12345678", "cost_basis": "360.500000", "opened_at": "2024-03-15"}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let path = format!(
        "/api/v1/portfolios/{id}/positions/{}",
        created["id"].as_str().unwrap()
    );
    let replaced = app
        .send_json_as(
            Method::PUT,
            &path,
            &user.token,
            &json!({"symbol": "BRK.B", "quantity": "-2", "cost_basis": "0", "opened_at": "2024-03-16"}),
        )
        .await;
    let listed: Value = app
        .get_as(&format!("/api/v1/portfolios/{id}/positions"), &user.token)
        .await
        .json()
        .await
        .unwrap();
    let deleted = app
        .authed(Method::DELETE, &path, &user.token)
        .send()
        .await
        .unwrap();
    let gone = app.get_as(&path, &user.token).await;

    assert_eq!(created["quantity"], "0.12345678");
    assert_eq!(created["cost_basis"], "360.5");
    assert_eq!(replaced.status(), 200);
    assert_eq!(listed["positions"][0]["quantity"], "-2");
    assert_eq!(listed["positions"][0]["opened_at"], "2024-03-16");
    assert_eq!(deleted.status(), 204);
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn each_bad_position_field_is_a_422() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let id = new_portfolio(&app, &user, "Core").await;
    let good =
        json!({"symbol": "AAPL", "quantity": "1", "cost_basis": "1", "opened_at": "2024-01-02"});

    for (field, value) in [
        ("symbol", json!("aapl")),
        ("quantity", json!("0")),
        ("quantity", json!("1.123456789")),
        ("quantity", json!("10000000000000000")),
        ("quantity", json!("ten")),
        ("quantity", json!(true)),
        ("cost_basis", json!("-1")),
        ("cost_basis", json!("1.1234567")),
        ("cost_basis", json!("100000000000000")),
        ("opened_at", json!("2024-02-30")),
        ("opened_at", json!("2999-01-01")),
        ("extra", json!(1)),
    ] {
        let mut body = good.clone();
        body[field] = value.clone();
        let response = add_position(&app, &user, &id, body).await;
        assert_eq!(response.status(), 422, "{field} = {value}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "validation_failed");
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("quantity");
    assert_eq!(add_position(&app, &user, &id, missing).await.status(), 422);
}

#[tokio::test]
async fn a_refused_position_field_is_named_before_its_rules_own_words() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let id = new_portfolio(&app, &user, "Core").await;
    let good =
        json!({"symbol": "AAPL", "quantity": "1", "cost_basis": "1", "opened_at": "2024-01-02"});

    for (field, value, message) in [
        (
            "symbol",
            json!("aapl"),
            "symbol: expected an upper-case ticker such as AAPL or BRK.B (letters, digits and . \
             - ^, at most 20), got \"aapl\"",
        ),
        ("quantity", json!("0"), "quantity: must not be zero"),
        (
            "quantity",
            json!(1),
            "quantity: expected a decimal as a JSON string, such as \"10.5\"",
        ),
        (
            "quantity",
            json!("1.123456789"),
            "quantity: expected a decimal such as 12.5, with at most 16 digits before the point \
             and 8 after it, got \"1.123456789\"",
        ),
        (
            "cost_basis",
            json!("-1"),
            "cost_basis: must not be negative",
        ),
    ] {
        let mut body = good.clone();
        body[field] = value;
        let response = add_position(&app, &user, &id, body).await;
        assert_eq!(response.status(), 422, "{field}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["message"], message);
    }
    let response = app
        .send_json_as(
            Method::POST,
            "/api/v1/portfolios",
            &user.token,
            &json!({"name": " \t "}),
        )
        .await;
    let error: Value = response.json().await.unwrap();
    assert_eq!(
        error["error"]["message"],
        "name: expected 1 to 100 printable characters"
    );
}

#[tokio::test]
async fn the_summary_values_positions_exactly_at_the_latest_close_and_lists_the_unpriced() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let id = new_portfolio(&app, &user, "Core").await;
    app.insert_bar("AAPL", "2025-01-02", "0.2").await;
    app.insert_bar("AAPL", "2025-01-03", "0.3").await;
    app.insert_bar("MSFT", "2025-01-02", "420.123456").await;
    for body in [
        json!({"symbol": "AAPL", "quantity": "0.1", "cost_basis": "0.1", "opened_at": "2024-01-02"}),
        json!({"symbol": "AAPL", "quantity": "0.2", "cost_basis": "0.2", "opened_at": "2024-01-03"}),
        json!({"symbol": "MSFT", "quantity": "3", "cost_basis": "400", "opened_at": "2024-01-02"}),
        json!({"symbol": "NOPRICE", "quantity": "5", "cost_basis": "1", "opened_at": "2024-01-02"}),
    ] {
        assert_eq!(add_position(&app, &user, &id, body).await.status(), 201);
    }

    let response = app
        .get_as(&format!("/api/v1/portfolios/{id}/summary"), &user.token)
        .await;

    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.unwrap();
    let values: Vec<(&str, &str, &str)> = summary["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["market_value"].as_str().unwrap(),
                p["cost"].as_str().unwrap(),
                p["unrealized_pnl"].as_str().unwrap(),
            )
        })
        .collect();
    // 0.1 × 0.3 + 0.2 × 0.3 is 0.09 exactly, where binary floats give 0.09000000000000001.
    assert_eq!(
        values,
        [
            ("0.03", "0.01", "0.02"),
            ("0.06", "0.04", "0.02"),
            ("1260.370368", "1200", "60.370368"),
        ]
    );
    assert_eq!(summary["positions"][0]["price"], "0.3");
    assert_eq!(summary["positions"][0]["price_date"], "2025-01-03");
    assert_eq!(summary["total_market_value"], "1260.460368");
    assert_eq!(summary["total_cost"], "1200.05");
    assert_eq!(summary["total_unrealized_pnl"], "60.410368");
    assert_eq!(summary["as_of"], "2025-01-03");
    assert_eq!(summary["unpriced"][0]["symbol"], "NOPRICE");
    assert_eq!(summary["unpriced"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_empty_portfolio_summarises_to_zero_and_portfolios_need_a_token() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let id = new_portfolio(&app, &user, "Empty").await;

    let summary: Value = app
        .get_as(&format!("/api/v1/portfolios/{id}/summary"), &user.token)
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(summary["total_market_value"], "0");
    assert_eq!(summary["as_of"], Value::Null);
    assert_eq!(app.get("/api/v1/portfolios").await.status(), 401);
}
