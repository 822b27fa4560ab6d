//! The cache of users (src/auth/cache.rs): a known user costs no read, a change to their row
//! takes effect on the next request, and a lost listener empties the cache.

use std::time::Duration;

use serde_json::Value;
use sigmasight::auth::invalidation::{Confirmations, CONFIRM_WITHIN};
use sigmasight::auth::Role;
use uuid::Uuid;

use crate::helpers::{connect, poll, TestApp};

/// Changes the user's email without firing triggers (so without announcing it): what the app
/// then answers shows whether it read the row or served the user from memory.
async fn change_email_unannounced(app: &TestApp, id: Uuid, email: &str) {
    let mut db = connect(&app.database_url).await;
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET email = $2 WHERE id = $1")
        .bind(id)
        .bind(email)
        .execute(&mut db)
        .await
        .unwrap();
}

async fn email_seen(app: &TestApp, token: &str) -> String {
    let response = app.get_as("/api/v1/auth/me", token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["email"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_known_user_is_not_read_again_until_the_database_announces_a_change() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    app.user_listener().await;
    assert_eq!(email_seen(&app, &user.token).await, user.email);

    change_email_unannounced(&app, user.id, "unannounced@example.com").await;
    assert_eq!(
        email_seen(&app, &user.token).await,
        user.email,
        "the row was read again: the cache did not serve the known user"
    );

    // An ordinary update fires the trigger: once announced (a moment after the commit), the
    // row is read again.
    sqlx::query("UPDATE users SET role = 'admin' WHERE id = $1")
        .bind(user.id)
        .execute(&mut connect(&app.database_url).await)
        .await
        .unwrap();
    let read_again = poll(Duration::from_secs(5), || async {
        email_seen(&app, &user.token).await == "unannounced@example.com"
    })
    .await;
    assert!(read_again, "the announced change never reached the cache");
}

#[tokio::test]
async fn a_confirmed_change_is_seen_by_every_app_on_the_very_next_request() {
    // Many times over, and by two app processes (replicas) at once: once `Confirmations::wait`
    // (which `user disable` uses) returns, no request can be served from a cache. Without the
    // wait, the request right after the commit races the notification (and wins at times).
    let app = TestApp::spawn().await;
    let replica = TestApp::spawn_with(&app.database_url, |f| f).await;
    replica.wait_until_ready().await;
    app.user_listener().await;
    replica.user_listener().await;
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let mut db = connect(&app.database_url).await;
    let user = app.user(Role::User).await;
    let keys = crate::helpers::test_keys();
    for version in 0..20 {
        let token = keys.issue(user.id, Role::User, version, chrono::Utc::now().timestamp());
        for server in [&app, &replica] {
            assert_eq!(
                server.get_as("/api/v1/auth/me", &token).await.status(),
                200,
                "version {version} before its revocation"
            );
        }
        let confirmations = Confirmations::expect(&pool).await.unwrap();
        sqlx::query("UPDATE users SET token_version = token_version + 1 WHERE id = $1")
            .bind(user.id)
            .execute(&mut db)
            .await
            .unwrap();
        let unconfirmed = confirmations.wait(user.id, CONFIRM_WITHIN).await.unwrap();
        assert_eq!(unconfirmed, 0, "both apps confirm");
        for server in [&app, &replica] {
            assert_eq!(
                server.get_as("/api/v1/auth/me", &token).await.status(),
                401,
                "version {version} served after its revocation was confirmed"
            );
        }
    }
}

#[tokio::test]
async fn a_lost_listener_empties_the_cache_and_a_new_one_takes_over() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let first = app.user_listener().await;
    assert_eq!(email_seen(&app, &user.token).await, user.email);

    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(first)
        .execute(&mut connect(&crate::helpers::admin_url()).await)
        .await
        .unwrap();
    // Unannounced: only a cache emptied when the listener was lost can show it.
    change_email_unannounced(&app, user.id, "after-the-loss@example.com").await;

    let refreshed = poll(Duration::from_secs(10), || async {
        email_seen(&app, &user.token).await == "after-the-loss@example.com"
    })
    .await;
    assert!(
        refreshed,
        "a user cached before the listener was lost is still served"
    );
    let second = app.user_listener().await;
    assert_ne!(second, first, "no new listener");

    // The new listener's cache keeps users and drops them on announcements again.
    assert_eq!(
        email_seen(&app, &user.token).await,
        "after-the-loss@example.com"
    );
    change_email_unannounced(&app, user.id, "unannounced-again@example.com").await;
    assert_eq!(
        email_seen(&app, &user.token).await,
        "after-the-loss@example.com"
    );
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    assert!(
        sigmasight::auth::users::disable(&pool, "unannounced-again@example.com")
            .await
            .unwrap()
    );
    assert_eq!(
        app.get_as("/api/v1/auth/me", &user.token).await.status(),
        401
    );
}
