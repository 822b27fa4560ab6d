//! The `user` and `seed` commands, and what they change for the API.

use serde_json::Value;

use crate::helpers::{
    client, migrated_database, run_binary, run_binary_with_stdin, Process, TestApp,
};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_user_created_with_a_password_from_stdin_logs_in_and_their_id_joins_the_access_line() {
    let database = migrated_database().await;
    let env = [("DATABASE_URL", database.as_str())];

    let created = run_binary_with_stdin(
        &["user", "create", "--email", "Ops@Example.com", "--admin"],
        &env,
        "a long enough password\n",
    );

    assert_eq!(created.status.code(), Some(0), "{}", text(&created.stderr));
    assert!(text(&created.stdout).contains("created admin Ops@Example.com"));
    let process = Process::serve(&[("DATABASE_URL", &database), ("MIGRATE_ON_START", "false")]);
    process.wait_until_live().await;
    let login: Value = client()
        .post(format!("{}/api/v1/auth/login", process.address()))
        .json(
            &serde_json::json!({"email": "ops@example.com", "password": "a long enough password"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me: Value = client()
        .get(format!("{}/api/v1/auth/me", process.address()))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .header("X-Request-ID", "me-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "admin");
    let line = process
        .wait_for_log(|l| l["target"] == "access" && l["request_id"] == "me-1")
        .await;
    assert_eq!(line["user_id"], me["id"], "{line}");
}

#[test]
fn a_short_password_or_a_duplicate_email_is_refused() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(migrated_database());
    let env = [("DATABASE_URL", database.as_str())];
    let create = |email: &str, password: &str| {
        run_binary_with_stdin(&["user", "create", "--email", email], &env, password)
    };

    let short = create("a@example.com", "elevenchars\n");
    let first = create("a@example.com", "twelve chars\n");
    let duplicate = create("A@EXAMPLE.COM", "twelve chars\n");
    let bad_email = create("not-an-email", "twelve chars\n");

    assert_eq!(short.status.code(), Some(2), "{}", text(&short.stderr));
    assert!(text(&short.stderr).contains("12 to 1024 characters"));
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert_eq!(duplicate.status.code(), Some(1));
    assert!(text(&duplicate.stderr).contains("already exists"));
    assert_eq!(bad_email.status.code(), Some(2));
}

#[tokio::test]
async fn disabling_a_user_stops_their_tokens_at_once() {
    let app = TestApp::spawn().await;
    let user = app.user(sigmasight::auth::Role::User).await;
    let env = [("DATABASE_URL", app.database_url.as_str())];
    // The user is known to the app's cache, so the refusal below is the cache dropping them.
    app.user_listener().await;
    assert_eq!(
        app.get_as("/api/v1/auth/me", &user.token).await.status(),
        200
    );

    // Off the test's runtime thread, which also runs the app: `user disable` waits for the
    // app's listener to confirm that it dropped the user.
    let (database_url, email) = (app.database_url.clone(), user.email.clone());
    let disabled = tokio::task::spawn_blocking(move || {
        run_binary(
            &["user", "disable", "--email", &email],
            &[("DATABASE_URL", &database_url)],
        )
    })
    .await
    .unwrap();
    let unknown = run_binary(&["user", "disable", "--email", "nobody@example.com"], &env);

    assert_eq!(
        disabled.status.code(),
        Some(0),
        "{}",
        text(&disabled.stderr)
    );
    let said = format!("{}{}", text(&disabled.stdout), text(&disabled.stderr));
    assert!(
        !said.contains("not every API process confirmed"),
        "the app did not confirm dropping the user: {said}"
    );
    assert_eq!(
        app.get_as("/api/v1/auth/me", &user.token).await.status(),
        401
    );
    assert_eq!(unknown.status.code(), Some(1));
}

#[tokio::test]
async fn the_demo_seed_is_idempotent_and_its_user_logs_in_with_demo_password() {
    let app = TestApp::spawn().await;
    let env = [
        ("DATABASE_URL", app.database_url.as_str()),
        ("DEMO_PASSWORD", "the demo password"),
    ];

    let first = run_binary(&["seed", "--demo"], &env);
    let second = run_binary(&["seed", "--demo"], &env);

    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("2 demo portfolio(s) created"));
    assert!(!text(&first.stdout).contains("the demo password"));
    assert!(text(&second.stdout).contains("0 demo portfolio(s) created"));
    assert!(text(&second.stdout).contains("unchanged"));
    let counts: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM portfolios), (SELECT count(*) FROM positions)",
    )
    .fetch_one(&mut crate::helpers::connect(&app.database_url).await)
    .await
    .unwrap();
    assert_eq!(counts, (2, 5));
    assert_eq!(
        app.login("demo@example.com", "the demo password")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn without_demo_password_the_seed_prints_a_random_one_once_that_logs_in() {
    let app = TestApp::spawn().await;
    let env = [("DATABASE_URL", app.database_url.as_str())];

    let first = text(&run_binary(&["seed", "--demo"], &env).stdout);
    let second = text(&run_binary(&["seed", "--demo"], &env).stdout);

    let password = first
        .split("with the password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no password in {first:?}"));
    assert!(password.len() >= 32, "{password}");
    assert!(!second.contains(password), "{second}");
    assert_eq!(app.login("demo@example.com", password).await.status(), 200);
}
