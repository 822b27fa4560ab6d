use serde_json::Value;
use sqlx::Executor;

use sigmasight::auth::Role;

use crate::helpers::{connect, TestApp};

#[tokio::test]
async fn recent_etl_runs_are_listed_newest_first_up_to_the_limit() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    connect(&app.database_url)
        .await
        .execute(
            "INSERT INTO etl_run (started_at, finished_at, status, providers, date_from, date_to, failures)
             VALUES (now() - interval '2 days', now() - interval '2 days', 'succeeded', '{fmp}', '2025-01-13', '2025-01-13', '[]'),
                    (now() - interval '1 day', now() - interval '1 day', 'partial', '{fmp,polygon}', '2025-01-14', '2025-01-14',
                     '[{\"symbol\": \"XYZ\", \"provider\": \"fmp\", \"error\": \"no data\"}]')",
        )
        .await
        .unwrap();

    let all: Value = app
        .get_as("/api/v1/etl/runs", &user.token)
        .await
        .json()
        .await
        .unwrap();
    let one = app.get_as("/api/v1/etl/runs?limit=1", &user.token).await;

    assert_eq!(all["runs"].as_array().unwrap().len(), 2);
    assert_eq!(one.status(), 200);
    let one: Value = one.json().await.unwrap();
    let runs = one["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "partial");
    assert_eq!(runs[0]["providers"], serde_json::json!(["fmp", "polygon"]));
    assert_eq!(runs[0]["date_from"], "2025-01-14");
    assert_eq!(runs[0]["failures"][0]["symbol"], "XYZ");
}

#[tokio::test]
async fn a_limit_outside_1_to_100_is_a_422_in_the_error_format() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;

    for limit in ["0", "101", "abc", "-1"] {
        let response = app
            .get_as(&format!("/api/v1/etl/runs?limit={limit}"), &user.token)
            .await;

        assert_eq!(response.status(), 422, "limit={limit}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "validation_failed");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("limit: expected an integer from 1 to 100"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn etl_runs_need_a_bearer_token() {
    let app = TestApp::spawn().await;

    let response = app.get("/api/v1/etl/runs").await;

    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}
