//! The login's public edge: who the client is, how its attempts are counted, and what a burst
//! of logins may cost.

use std::time::Duration;

use serde_json::Value;
use sigmasight::auth::Role;

use crate::helpers::{
    client, migrated_database, run_binary_with_stdin, Process, TestApp, TEST_PASSWORD,
};

const XFF: &str = "x-forwarded-for";

/// An app behind one trusted proxy that writes `header`.
async fn behind_one_proxy(header: &'static str) -> TestApp {
    let app = TestApp::spawn_with(&migrated_database().await, move |f| {
        f.merge(("trusted_proxy_hops", 1))
            .merge(("client_address_header", header))
            .merge(("migrate_on_start", false))
    })
    .await;
    app.wait_until_ready().await;
    app
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn forwarded_headers_are_ignored_unless_a_proxy_is_trusted() {
    let app = TestApp::spawn().await;
    for i in 0..10 {
        let response = app
            .login_via(
                XFF,
                &format!("198.51.100.{i}"),
                &format!("a-{i}@example.com"),
                "guess",
            )
            .await;
        assert_eq!(response.status(), 401);
    }

    // A new forwarded address is still the same peer.
    let response = app
        .login_via(XFF, "198.51.100.77", "b@example.com", "guess")
        .await;

    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn behind_one_trusted_proxy_the_client_is_the_last_forwarded_address() {
    let app = behind_one_proxy(XFF).await;
    for i in 0..10 {
        // The first entry is the client's own claim; the last is what the proxy saw.
        let response = app
            .login_via(
                XFF,
                &format!("9.9.9.{i}, 10.0.0.1"),
                &format!("a-{i}@example.com"),
                "guess",
            )
            .await;
        assert_eq!(response.status(), 401);
    }

    let same_client = app
        .login_via(XFF, "8.8.8.8, 10.0.0.1", "b@example.com", "guess")
        .await;
    let other_client = app
        .login_via(XFF, "9.9.9.0, 10.0.0.2", "c@example.com", "guess")
        .await;

    assert_eq!(same_client.status(), 429);
    assert_eq!(other_client.status(), 401);
}

#[tokio::test]
async fn behind_an_edge_that_writes_x_real_ip_the_client_is_that_address() {
    let app = behind_one_proxy("x-real-ip").await;
    let login = |real_ip: &'static str, forwarded: String, email: String| {
        app.client
            .post(format!("{}/api/v1/auth/login", app.address))
            .header("x-real-ip", real_ip)
            .header(XFF, forwarded)
            .json(&serde_json::json!({"email": email, "password": "guess"}))
            .send()
    };
    for i in 0..10 {
        let response = login(
            "198.51.100.1",
            format!("203.0.113.{i}"),
            format!("a-{i}@example.com"),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 401);
    }

    let same_client = login(
        "198.51.100.1",
        "203.0.113.99".into(),
        "b@example.com".into(),
    )
    .await
    .unwrap();
    let other_client = login("198.51.100.2", "203.0.113.0".into(), "c@example.com".into())
        .await
        .unwrap();

    assert_eq!(same_client.status(), 429);
    assert_eq!(other_client.status(), 401);
}

#[tokio::test]
async fn an_ipv6_client_is_its_whole_64() {
    let app = behind_one_proxy(XFF).await;
    for i in 1..=10 {
        let response = app
            .login_via(
                XFF,
                &format!("2001:db8:1:2::{i:x}"),
                &format!("a-{i}@example.com"),
                "guess",
            )
            .await;
        assert_eq!(response.status(), 401);
    }

    let same_64 = app
        .login_via(XFF, "2001:db8:1:2:ffff::1", "b@example.com", "guess")
        .await;
    let next_64 = app
        .login_via(XFF, "2001:db8:1:3::1", "c@example.com", "guess")
        .await;

    assert_eq!(same_64.status(), 429);
    assert_eq!(next_64.status(), 401);
}

#[tokio::test]
async fn one_address_cannot_lock_somebody_elses_account() {
    let app = behind_one_proxy(XFF).await;
    let (_, email) = app.create_user(Role::User).await;
    for _ in 0..10 {
        let response = app.login_via(XFF, "203.0.113.66", &email, "guess").await;
        assert_eq!(response.status(), 401);
    }
    let attacker = app.login_via(XFF, "203.0.113.66", &email, "guess").await;
    assert_eq!(attacker.status(), 429);

    let owner = app
        .login_via(XFF, "198.51.100.5", &email, TEST_PASSWORD)
        .await;

    assert_eq!(owner.status(), 200, "the account was locked by one address");
}

#[tokio::test]
async fn attempts_from_many_addresses_lock_an_email_with_retry_after() {
    let app = behind_one_proxy(XFF).await;
    let (_, email) = app.create_user(Role::User).await;
    for i in 0..10 {
        let response = app
            .login_via(XFF, &format!("203.0.113.{i}"), &email, "guess")
            .await;
        assert_eq!(response.status(), 401);
    }

    let response = app
        .login_via(XFF, "198.51.100.5", &email, TEST_PASSWORD)
        .await;

    assert_eq!(response.status(), 429);
    assert!((1..=60).contains(&retry_after(&response)));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests");
}

#[tokio::test]
async fn an_email_over_254_characters_is_refused_before_anything_is_counted() {
    let app = TestApp::spawn().await;
    let long = format!("{}@example.com", "a".repeat(243));
    assert_eq!(long.chars().count(), 255);
    for _ in 0..20 {
        let response = app.login(&long, "guess").await;
        assert_eq!(response.status(), 422);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "validation_failed");
    }

    // Nothing was counted against this client.
    let response = app.login("someone@example.com", "guess").await;

    assert_eq!(response.status(), 401);
}

/// The most a serving process may hold while a thousand logins arrive at once, with two
/// verifications at a time: two argon2 blocks of 19 MiB, the idle process (about 10 MiB in a
/// release build, 26 MiB in the debug one tested here), and a thousand connections' buffers
/// and tasks. Measured 78-97 MiB; without the bound, each login held 19 MiB of its own.
const LOGIN_BURST_RSS_BOUND_MIB: u64 = 160;

#[tokio::test]
async fn a_thousand_concurrent_logins_stay_within_bounded_memory_and_a_valid_login_gets_through() {
    let database = migrated_database().await;
    let output = run_binary_with_stdin(
        &["user", "create", "--email", "owner@example.com"],
        &[("DATABASE_URL", &database)],
        &format!("{TEST_PASSWORD}\n"),
    );
    assert!(output.status.success(), "{output:?}");
    let process = Process::serve(&[
        ("DATABASE_URL", &database),
        ("MIGRATE_ON_START", "false"),
        ("TRUSTED_PROXY_HOPS", "1"),
        ("PASSWORD_HASH_CONCURRENCY", "2"),
        ("PASSWORD_HASH_QUEUE", "16"),
        ("LOG_LEVEL", "warn"),
    ]);
    process.wait_until_live().await;
    let idle_mib = process.peak_rss_kib() / 1024;
    let url = format!("{}/api/v1/auth/login", process.address());

    // A thousand logins at once, each from its own address, for emails nobody has.
    let burst: Vec<_> = (0..1000u32)
        .map(|i| {
            let (client, url) = (client(), url.clone());
            tokio::spawn(async move {
                let response = client
                    .post(&url)
                    .header(XFF, format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255))
                    .json(&serde_json::json!({"email": format!("nobody-{i}@example.com"), "password": "guess"}))
                    .send()
                    .await
                    .expect("an answer");
                response.status().as_u16()
            })
        })
        .collect();
    // Meanwhile the owner logs in, waiting as told whenever the service is busy.
    let owner = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let response = client()
                .post(&url)
                .header(XFF, "192.0.2.10")
                .json(&serde_json::json!({"email": "owner@example.com", "password": TEST_PASSWORD}))
                .send()
                .await
                .expect("an answer");
            match response.status().as_u16() {
                200 => return true,
                503 if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_secs(retry_after(&response))).await;
                }
                _ => return false,
            }
        }
    };
    let owner_got_in = owner.await;
    let mut statuses = std::collections::BTreeMap::new();
    for task in burst {
        *statuses.entry(task.await.unwrap()).or_insert(0u32) += 1;
    }

    let peak_mib = process.peak_rss_kib() / 1024;
    assert!(
        owner_got_in,
        "the owner's login did not succeed; burst: {statuses:?}"
    );
    assert!(
        statuses.keys().all(|s| *s == 401 || *s == 503),
        "only refusals and 503s expected: {statuses:?}"
    );
    assert!(
        statuses.contains_key(&503),
        "the queue never filled: {statuses:?}"
    );
    assert!(
        peak_mib < LOGIN_BURST_RSS_BOUND_MIB,
        "peak RSS {peak_mib} MiB (bound {LOGIN_BURST_RSS_BOUND_MIB}); burst: {statuses:?}"
    );
    println!("RSS idle {idle_mib} MiB, peak {peak_mib} MiB; burst answers {statuses:?}");
}
