use serde_json::Value;
use sigmasight::auth::token::Claims;
use sigmasight::auth::token::Keys;
use sigmasight::auth::Role;
use sigmasight::config::Secret;

use crate::helpers::{connect, test_keys, TestApp, TEST_PASSWORD};

fn assert_unauthorized(response: &reqwest::Response) {
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers().get("www-authenticate").unwrap(),
        "Bearer"
    );
}

#[tokio::test]
async fn a_login_gives_a_bearer_token_that_me_accepts() {
    let app = TestApp::spawn().await;
    let (id, email) = app.create_user(Role::Admin).await;

    // The email is matched whatever its case.
    let response = app.login(&email.to_uppercase(), TEST_PASSWORD).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    let me: Value = app
        .get_as("/api/v1/auth/me", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], id.to_string());
    assert_eq!(me["email"], email);
    assert_eq!(me["role"], "admin");
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let (_, email) = app.create_user(Role::User).await;

    let wrong_password = app.login(&email, "not the password at all").await;
    let unknown_email = app.login("nobody@example.com", TEST_PASSWORD).await;
    let impossible_email = app.login("no\u{0}body@example.com", TEST_PASSWORD).await;

    let mut bodies = Vec::new();
    for response in [wrong_password, unknown_email, impossible_email] {
        assert_unauthorized(&response);
        let mut body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        body["error"]["request_id"] = Value::Null;
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], bodies[2]);
}

#[tokio::test]
async fn a_login_body_of_the_wrong_shape_is_refused_in_the_error_format() {
    let app = TestApp::spawn().await;
    let url = format!("{}/api/v1/auth/login", app.address);

    let cases = [
        (r#"{"email":"a@b.co"}"#, 422, "validation_failed"),
        (
            r#"{"email":"a@b.co","password":"x","admin":true}"#,
            422,
            "validation_failed",
        ),
        (r#"{"email":"#, 400, "bad_request"),
    ];
    for (body, status, code) in cases {
        let response = app
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{body}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code);
    }
}

#[tokio::test]
async fn protected_routes_refuse_missing_malformed_expired_and_foreign_tokens() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let now = chrono::Utc::now().timestamp();
    let expired = test_keys().sign(&Claims {
        sub: user.id,
        role: Role::User,
        ver: 0,
        iat: now - 7200,
        exp: now - 3600,
    });
    let foreign = Keys::new(
        Secret::new("another-key-another-key-another-key!"),
        None,
        std::time::Duration::from_secs(3600),
    )
    .issue(user.id, Role::User, 0, now);
    let url = format!("{}/api/v1/auth/me", app.address);

    let missing = app.client.get(&url).send().await.unwrap();
    let not_bearer = app
        .client
        .get(&url)
        .header("authorization", format!("Basic {}", user.token))
        .send()
        .await
        .unwrap();
    assert_unauthorized(&missing);
    assert_unauthorized(&not_bearer);
    for (token, message) in [
        ("not-a-token", "malformed"),
        (expired.as_str(), "expired"),
        (foreign.as_str(), "signature"),
    ] {
        let response = app.get_as("/api/v1/auth/me", token).await;
        assert_unauthorized(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(message),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_disabled_users_token_stops_working_and_they_cannot_log_in() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    assert_eq!(
        app.get_as("/api/v1/auth/me", &user.token).await.status(),
        200
    );
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();

    assert!(
        sigmasight::db::users::disable(&pool, &user.email.to_uppercase())
            .await
            .unwrap()
    );

    assert_unauthorized(&app.get_as("/api/v1/auth/me", &user.token).await);
    assert_unauthorized(&app.login(&user.email, TEST_PASSWORD).await);
}

#[tokio::test]
async fn a_bumped_token_version_revokes_earlier_tokens() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;

    sqlx::query("UPDATE users SET token_version = token_version + 1 WHERE id = $1")
        .bind(user.id)
        .execute(&mut connect(&app.database_url).await)
        .await
        .unwrap();

    let response = app.get_as("/api/v1/auth/me", &user.token).await;
    assert_unauthorized(&response);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("revoked"));
}

#[tokio::test]
async fn after_a_rotation_tokens_of_the_previous_key_still_work_until_it_is_dropped() {
    let database = crate::helpers::fresh_database().await;
    let before = TestApp::spawn_with(&database, |f| f).await;
    before.wait_until_ready().await;
    let user = before.user(Role::User).await;
    let new_key = "the-new-key-after-rotation-0123456789abcdef";

    let rotated = TestApp::spawn_with(&database, |f| {
        f.merge(("secret_key", new_key))
            .merge(("secret_key_previous", crate::helpers::TEST_SECRET_KEY))
    })
    .await;
    let dropped = TestApp::spawn_with(&database, |f| f.merge(("secret_key", new_key))).await;

    assert_eq!(
        rotated
            .get_as("/api/v1/auth/me", &user.token)
            .await
            .status(),
        200
    );
    assert_unauthorized(&dropped.get_as("/api/v1/auth/me", &user.token).await);
    let fresh: Value = rotated
        .login(&user.email, TEST_PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(dropped.get_as("/api/v1/auth/me", fresh).await.status(), 200);
}

#[tokio::test]
async fn every_protected_route_refuses_each_kind_of_bad_token() {
    let app = TestApp::spawn().await;
    let disabled = app.user(Role::Admin).await;
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    sigmasight::db::users::disable(&pool, &disabled.email)
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let expired = test_keys().sign(&Claims {
        sub: disabled.id,
        role: Role::Admin,
        ver: 1,
        iat: now - 7200,
        exp: now - 1,
    });
    let wrong_key = Keys::new(
        Secret::new("not-the-server-key-not-the-server-key"),
        None,
        std::time::Duration::from_secs(3600),
    )
    .issue(disabled.id, Role::Admin, 1, now);
    let id = uuid::Uuid::new_v4();
    let routes = [
        ("GET", "/api/v1/auth/me".to_owned()),
        ("GET", "/api/v1/etl/runs".to_owned()),
        ("GET", "/api/v1/symbols".to_owned()),
        ("POST", "/api/v1/symbols".to_owned()),
        ("GET", "/api/v1/prices/AAPL".to_owned()),
        ("GET", "/api/v1/prices/latest?symbols=AAPL".to_owned()),
        ("GET", "/api/v1/portfolios".to_owned()),
        ("POST", "/api/v1/portfolios".to_owned()),
        ("GET", format!("/api/v1/portfolios/{id}")),
        ("PATCH", format!("/api/v1/portfolios/{id}")),
        ("DELETE", format!("/api/v1/portfolios/{id}")),
        ("GET", format!("/api/v1/portfolios/{id}/positions")),
        ("POST", format!("/api/v1/portfolios/{id}/positions")),
        ("GET", format!("/api/v1/portfolios/{id}/positions/{id}")),
        ("PUT", format!("/api/v1/portfolios/{id}/positions/{id}")),
        ("DELETE", format!("/api/v1/portfolios/{id}/positions/{id}")),
        ("GET", format!("/api/v1/portfolios/{id}/summary")),
    ];

    for (method, path) in &routes {
        let method: reqwest::Method = method.parse().unwrap();
        let missing = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_unauthorized(&missing);
        // The disabled user's own token: right key, right version at issue, now refused.
        for token in ["garbage", &expired, &wrong_key, &disabled.token] {
            let response = app
                .authed(method.clone(), path, token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401, "{method} {path}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
        }
    }
}

#[tokio::test]
async fn an_unknown_email_costs_about_as_long_as_a_wrong_password() {
    let app = TestApp::spawn().await;
    let (_, email) = app.create_user(Role::User).await;
    // The median of a few attempts each, against scheduling noise; without the dummy hash an
    // unknown email answers in about a millisecond, against tens for a password check.
    let median = |mut times: Vec<std::time::Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..3 {
        let started = std::time::Instant::now();
        assert_eq!(app.login(&email, "not the password").await.status(), 401);
        wrong.push(started.elapsed());
        let started = std::time::Instant::now();
        let nobody = format!("nobody-{i}@example.com");
        assert_eq!(app.login(&nobody, "not the password").await.status(), 401);
        unknown.push(started.elapsed());
    }

    let (wrong, unknown) = (median(wrong), median(unknown));

    assert!(
        unknown * 5 >= wrong * 2,
        "unknown email {unknown:?} vs wrong password {wrong:?}"
    );
}
