use serde_json::{json, Value};
use sigmasight::auth::Role;

use crate::helpers::{TestApp, TestUser};

async fn app_with_bars() -> (TestApp, TestUser) {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    for (date, close) in [
        ("2025-01-02", "187.4425"),
        ("2025-01-03", "188.1"),
        ("2025-01-06", "190.000001"),
    ] {
        app.insert_bar("AAPL", date, close).await;
    }
    app.insert_bar("MSFT", "2025-01-03", "420.5").await;
    (app, user)
}

#[tokio::test]
async fn bars_come_oldest_first_with_exact_decimal_strings() {
    let (app, user) = app_with_bars().await;

    let response = app.get_as("/api/v1/prices/AAPL", &user.token).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "private, max-age=60");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["symbol"], "AAPL");
    let bars = body["bars"].as_array().unwrap();
    assert_eq!(bars.len(), 3);
    assert_eq!(
        bars[0],
        json!({"date": "2025-01-02", "open": "187.442500", "high": "187.442500",
               "low": "187.442500", "close": "187.442500", "adj_close": null, "volume": 1000})
    );
    assert_eq!(bars[2]["close"], "190.000001");
}

#[tokio::test]
async fn start_end_and_limit_select_the_most_recent_bars_in_the_range() {
    let (app, user) = app_with_bars().await;

    let ranged: Value = app
        .get_as(
            "/api/v1/prices/AAPL?start=2025-01-03&end=2025-01-06",
            &user.token,
        )
        .await
        .json()
        .await
        .unwrap();
    let limited: Value = app
        .get_as("/api/v1/prices/AAPL?limit=2", &user.token)
        .await
        .json()
        .await
        .unwrap();
    let unknown: Value = app
        .get_as("/api/v1/prices/ZZZZ", &user.token)
        .await
        .json()
        .await
        .unwrap();

    let dates = |v: &Value| -> Vec<String> {
        v["bars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["date"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(dates(&ranged), ["2025-01-03", "2025-01-06"]);
    assert_eq!(dates(&limited), ["2025-01-03", "2025-01-06"]);
    assert_eq!(dates(&unknown), Vec::<String>::new());
}

#[tokio::test]
async fn bad_parameters_are_422_or_400_in_the_error_format() {
    let (app, user) = app_with_bars().await;

    for (query, status) in [
        ("/api/v1/prices/aapl", 422),
        ("/api/v1/prices/AAPL?start=2025-13-01", 422),
        ("/api/v1/prices/AAPL?end=yesterday", 422),
        ("/api/v1/prices/AAPL?limit=0", 422),
        ("/api/v1/prices/AAPL?limit=5001", 422),
        ("/api/v1/prices/AAPL?limit=ten", 422),
        ("/api/v1/prices/AAPL?start=0001-01-01", 422),
        ("/api/v1/prices/AAPL?frequency=weekly", 400),
        ("/api/v1/prices/latest?symbols=", 422),
        ("/api/v1/prices/latest?symbols=AAPL,bad", 422),
        ("/api/v1/prices/latest?symbols=AAPL,,MSFT", 422),
        ("/api/v1/prices/latest?symbols=AAPL,%20MSFT", 422),
        ("/api/v1/prices/latest?symbols=AAPL,", 422),
    ] {
        let response = app.get_as(query, &user.token).await;
        assert_eq!(response.status(), status, "{query}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{query}: {body}");
    }
    let too_many: Vec<String> = (0..101).map(|i| format!("S{i}")).collect();
    let response = app
        .get_as(
            &format!("/api/v1/prices/latest?symbols={}", too_many.join(",")),
            &user.token,
        )
        .await;
    assert_eq!(response.status(), 422);
    let error: Value = app
        .get_as("/api/v1/prices/aapl", &user.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        error["error"]["message"],
        "symbol: expected an upper-case ticker such as AAPL or BRK.B (letters, digits and . - ^, \
         at most 20), got \"aapl\""
    );
}

#[tokio::test]
async fn an_end_before_start_selects_no_bars() {
    let (app, user) = app_with_bars().await;

    let response = app
        .get_as(
            "/api/v1/prices/AAPL?start=2025-01-06&end=2025-01-02",
            &user.token,
        )
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["bars"], json!([]));
}

#[tokio::test]
async fn a_list_of_repeats_counts_towards_the_100_and_each_symbol_is_answered_once() {
    let (app, user) = app_with_bars().await;
    let repeated = |n: usize| vec!["AAPL"; n].join(",");

    let hundred = app
        .get_as(
            &format!("/api/v1/prices/latest?symbols={}", repeated(100)),
            &user.token,
        )
        .await;
    let over = app
        .get_as(
            &format!("/api/v1/prices/latest?symbols={}", repeated(101)),
            &user.token,
        )
        .await;

    assert_eq!(hundred.status(), 200);
    let body: Value = hundred.json().await.unwrap();
    assert_eq!(body["prices"].as_array().unwrap().len(), 1);
    assert_eq!(over.status(), 422);
    let error: Value = over.json().await.unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("got 101"), "{message}");
}

#[tokio::test]
async fn a_long_list_is_refused_by_its_length_before_any_ticker_is_read() {
    let (app, user) = app_with_bars().await;
    // 30,000 tickers and a bad one at the end, 60 kB, near the longest URI that hyper reads
    // (64 kB): the count refuses it before any ticker is read or compared with the others.
    let symbols = format!("{}bad", "A,".repeat(30_000));

    let response = app
        .get_as(
            &format!("/api/v1/prices/latest?symbols={symbols}"),
            &user.token,
        )
        .await;

    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("got 30001"), "{message}");
}

#[tokio::test]
async fn an_unchanged_bar_list_is_a_304_for_its_etag_and_a_new_bar_changes_the_tag() {
    let (app, user) = app_with_bars().await;
    let first = app.get_as("/api/v1/prices/AAPL", &user.token).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();

    let again = app
        .authed(reqwest::Method::GET, "/api/v1/prices/AAPL", &user.token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    app.insert_bar("AAPL", "2025-01-07", "191").await;
    let changed = app
        .authed(reqwest::Method::GET, "/api/v1/prices/AAPL", &user.token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();

    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"], etag.as_str());
}

#[tokio::test]
async fn latest_gives_each_symbols_last_bar_and_lists_the_missing() {
    let (app, user) = app_with_bars().await;

    let response = app
        .get_as(
            "/api/v1/prices/latest?symbols=MSFT,AAPL,NOPE,AAPL",
            &user.token,
        )
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["prices"][0]["symbol"], "MSFT");
    assert_eq!(body["prices"][0]["close"], "420.500000");
    assert_eq!(body["prices"][1]["symbol"], "AAPL");
    assert_eq!(body["prices"][1]["date"], "2025-01-06");
    assert_eq!(body["prices"].as_array().unwrap().len(), 2);
    assert_eq!(body["missing"], json!(["NOPE"]));
}

#[tokio::test]
async fn prices_need_a_bearer_token() {
    let (app, _) = app_with_bars().await;

    assert_eq!(app.get("/api/v1/prices/AAPL").await.status(), 401);
    assert_eq!(
        app.get("/api/v1/prices/latest?symbols=AAPL").await.status(),
        401
    );
}
