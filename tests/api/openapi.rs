use serde_json::{json, Value};

use crate::helpers::TestApp;

#[tokio::test]
async fn the_openapi_document_is_3_1_and_describes_every_product_route() {
    let app = TestApp::spawn().await;

    let response = app.get("/api/v1/openapi.json").await;

    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/auth/login",
        "/api/v1/auth/me",
        "/api/v1/symbols",
        "/api/v1/prices/{symbol}",
        "/api/v1/prices/latest",
        "/api/v1/etl/runs",
        "/api/v1/portfolios",
        "/api/v1/portfolios/{id}",
        "/api/v1/portfolios/{id}/positions",
        "/api/v1/portfolios/{id}/positions/{position_id}",
        "/api/v1/portfolios/{id}/summary",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not described");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary() {
    let app = TestApp::spawn().await;

    // `/docs` redirects to `/docs/` (followed here), where the page is.
    let response = app.get("/docs").await;

    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
}

#[tokio::test]
async fn the_docs_page_carries_the_assets_it_loads_and_none_it_does_not() {
    let app = TestApp::spawn().await;

    let page = app.get("/docs/").await.text().await.unwrap();
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
    ] {
        assert!(page.contains(asset), "the page no longer loads {asset}");
        let response = app.get(&format!("/docs/{asset}")).await;
        assert_eq!(response.status(), 200, "{asset}");
        assert!(
            response.bytes().await.unwrap().len() > 100_000,
            "{asset} is not whole"
        );
    }
    // The ES-module bundles and source maps are emptied at build time (.cargo/config.toml).
    for unused in ["swagger-ui-es-bundle.js", "swagger-ui-bundle.js.map"] {
        assert!(!page.contains(unused), "the page loads {unused}");
        let body = app
            .get(&format!("/docs/{unused}"))
            .await
            .bytes()
            .await
            .unwrap();
        assert!(
            body.is_empty(),
            "{unused} is compiled in: {} bytes",
            body.len()
        );
    }
}

/// Where a value goes in a request.
#[derive(Debug, Clone, Copy)]
enum Input {
    /// A field of the JSON body, the rest of which is the operation's good body.
    Body(&'static str),
    /// A query parameter (an array is sent as `a,b`, the document's form style).
    Query(&'static str),
    /// A path parameter.
    Path(&'static str),
}

/// An operation of the document, and a request to it that every rule takes.
struct Operation {
    method: &'static str,
    /// The path as the document names it.
    documented: &'static str,
    /// The path requested, its parameters filled in.
    concrete: String,
    good_body: Option<Value>,
}

/// The rules of the handlers, one value just inside and one just outside each bound.
fn cases(portfolio: &str) -> Vec<(Operation, Input, Value, bool)> {
    let today = chrono::Utc::now().date_naive();
    let day = |days: u64| (today + chrono::Days::new(days)).to_string();
    let portfolios = || Operation {
        method: "POST",
        documented: "/api/v1/portfolios",
        concrete: "/api/v1/portfolios".to_owned(),
        good_body: Some(json!({"name": "Core"})),
    };
    let positions = || Operation {
        method: "POST",
        documented: "/api/v1/portfolios/{id}/positions",
        concrete: format!("/api/v1/portfolios/{portfolio}/positions"),
        good_body: Some(
            json!({"symbol": "AAPL", "quantity": "1", "cost_basis": "1", "opened_at": "2024-01-02"}),
        ),
    };
    let symbols = || Operation {
        method: "POST",
        documented: "/api/v1/symbols",
        concrete: "/api/v1/symbols".to_owned(),
        good_body: Some(json!({"symbol": "AAPL", "name": "Apple"})),
    };
    let bars = |symbol: &str| Operation {
        method: "GET",
        documented: "/api/v1/prices/{symbol}",
        concrete: format!("/api/v1/prices/{symbol}"),
        good_body: None,
    };
    let latest = || Operation {
        method: "GET",
        documented: "/api/v1/prices/latest",
        concrete: "/api/v1/prices/latest".to_owned(),
        good_body: None,
    };
    let runs = || Operation {
        method: "GET",
        documented: "/api/v1/etl/runs",
        concrete: "/api/v1/etl/runs".to_owned(),
        good_body: None,
    };
    let login = || Operation {
        method: "POST",
        documented: "/api/v1/auth/login",
        concrete: "/api/v1/auth/login".to_owned(),
        good_body: Some(json!({"email": "nobody@example.com", "password": "guess"})),
    };
    let tickers = |n: usize| json!((0..n).map(|i| format!("S{i}")).collect::<Vec<_>>());
    let repeats = |n: usize| json!(vec!["AAPL"; n]);
    let mut cases = Vec::new();
    let mut case = |operation: Operation, input: Input, value: Value, taken: bool| {
        cases.push((operation, input, value, taken));
    };

    // Counted in characters, as `maxLength` counts: 254 two-byte characters are 496 bytes.
    let email = Input::Body("email");
    case(
        login(),
        email,
        json!(format!("{}@example.com", "é".repeat(242))),
        true,
    );
    case(
        login(),
        email,
        json!(format!("{}@example.com", "é".repeat(243))),
        false,
    );

    let name = Input::Body("name");
    case(portfolios(), name, json!("x"), true);
    case(
        portfolios(),
        name,
        json!(format!(" {} ", "é".repeat(100))),
        true,
    );
    case(portfolios(), name, json!(""), false);
    case(portfolios(), name, json!(" \u{3000}\t"), false);
    case(portfolios(), name, json!("é".repeat(101)), false);
    case(portfolios(), name, json!("a\u{95}b"), false);

    let symbol = Input::Body("symbol");
    case(positions(), symbol, json!("BRK.B"), true);
    case(positions(), symbol, json!("aapl"), false);
    case(positions(), symbol, json!("ABCDEFGHIJKLMNOPQRSTU"), false);
    let quantity = Input::Body("quantity");
    for taken in ["-0.00000001", "9999999999999999.99999999", "0.1"] {
        case(positions(), quantity, json!(taken), true);
    }
    for refused in [
        "",
        "0",
        "-0.0",
        "1.123456789",
        "10000000000000000",
        "01",
        "+1",
        "1.",
        ".5",
        " 1",
        "1e3",
    ] {
        case(positions(), quantity, json!(refused), false);
    }
    let cost_basis = Input::Body("cost_basis");
    for taken in ["0", "99999999999999.999999"] {
        case(positions(), cost_basis, json!(taken), true);
    }
    for refused in ["", "-1", "-0", "1.1234567", "100000000000000"] {
        case(positions(), cost_basis, json!(refused), false);
    }
    let opened_at = Input::Body("opened_at");
    for taken in ["1900-01-01".to_owned(), day(0), day(1)] {
        case(positions(), opened_at, json!(taken), true);
    }
    for refused in [
        "1899-12-31".to_owned(),
        "0826-11-27".to_owned(),
        "2024-02-30".to_owned(),
        "2024-1-02".to_owned(),
        day(2),
    ] {
        case(positions(), opened_at, json!(refused), false);
    }

    case(symbols(), symbol, json!("BRK.B"), true);
    case(symbols(), symbol, json!("brk.b"), false);
    case(symbols(), name, json!(null), true);
    case(symbols(), name, json!("   "), true);
    case(
        symbols(),
        name,
        json!(format!(" {}\u{a0}", "é".repeat(200))),
        true,
    );
    case(symbols(), name, json!("é".repeat(201)), false);
    case(symbols(), name, json!("a\tb"), false);

    case(bars("AAPL"), Input::Path("symbol"), json!("AAPL"), true);
    case(bars("aapl"), Input::Path("symbol"), json!("aapl"), false);
    for input in [Input::Query("start"), Input::Query("end")] {
        case(bars("AAPL"), input, json!("1900-01-01"), true);
        case(bars("AAPL"), input, json!("9999-12-31"), true);
        case(bars("AAPL"), input, json!("1899-12-31"), false);
        case(bars("AAPL"), input, json!("2025-1-01"), false);
        case(bars("AAPL"), input, json!("2025-02-29"), false);
    }
    let limit = Input::Query("limit");
    case(bars("AAPL"), limit, json!(1), true);
    case(bars("AAPL"), limit, json!(5000), true);
    case(bars("AAPL"), limit, json!(0), false);
    case(bars("AAPL"), limit, json!(5001), false);

    let list = Input::Query("symbols");
    case(latest(), list, json!(["AAPL"]), true);
    case(latest(), list, tickers(100), true);
    case(latest(), list, repeats(100), true);
    case(latest(), list, json!([]), false);
    case(latest(), list, tickers(101), false);
    case(latest(), list, repeats(101), false);
    case(latest(), list, json!(["AAPL", ""]), false);
    case(latest(), list, json!(["AAPL", " MSFT"]), false);

    case(runs(), limit, json!(1), true);
    case(runs(), limit, json!(100), true);
    case(runs(), limit, json!(0), false);
    case(runs(), limit, json!(101), false);
    cases
}

/// Whether the served document takes `value` for `input` of `operation`.
fn document_takes(doc: &Value, operation: &Operation, input: Input, value: &Value) -> bool {
    let described = &doc["paths"][operation.documented][operation.method.to_lowercase()];
    let (schema, instance) = match input {
        Input::Body(field) => {
            let mut body = operation.good_body.clone().unwrap();
            body[field] = value.clone();
            // The body's schema is a reference into the document's components.
            let mut schema =
                described["requestBody"]["content"]["application/json"]["schema"].clone();
            schema["components"] = doc["components"].clone();
            (schema, body)
        }
        Input::Query(name) | Input::Path(name) => {
            let parameter = described["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{} does not document {name}", operation.documented));
            (parameter["schema"].clone(), value.clone())
        }
    };
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{}: {e}", operation.documented))
        .is_valid(&instance)
}

/// Whether the server takes `value` for `input` of `operation`: a 422 or 400 is a refusal,
/// a 2xx or a 409 (the same name or ticker again) means every rule passed.
async fn server_takes(
    app: &TestApp,
    token: &str,
    operation: &Operation,
    input: Input,
    value: &Value,
) -> bool {
    let method = reqwest::Method::from_bytes(operation.method.as_bytes()).unwrap();
    let mut request = app.authed(method, &operation.concrete, token);
    match input {
        Input::Body(field) => {
            let mut body = operation.good_body.clone().unwrap();
            body[field] = value.clone();
            request = request.json(&body);
        }
        Input::Query(name) => {
            let text = match value {
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(","),
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            request = request.query(&[(name, text)]);
        }
        Input::Path(_) => {}
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    match status {
        200..=299 | 409 => true,
        // An unknown login is a well-formed request refused for its credentials.
        401 if operation.documented == "/api/v1/auth/login" => true,
        400 | 422 => false,
        other => panic!(
            "{} {}: unexpected {other}",
            operation.method, operation.concrete
        ),
    }
}

#[tokio::test]
async fn every_rule_is_the_same_in_the_document_and_the_server_at_its_bounds() {
    let app = TestApp::spawn().await;
    let admin = app.user(sigmasight::auth::Role::Admin).await;
    let created: Value = app
        .send_json_as(
            reqwest::Method::POST,
            "/api/v1/portfolios",
            &admin.token,
            &json!({"name": "Bounds"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();

    let mut disagreements = Vec::new();
    for (operation, input, value, taken) in cases(created["id"].as_str().unwrap()) {
        let by_document = document_takes(&doc, &operation, input, &value);
        let by_server = server_takes(&app, &admin.token, &operation, input, &value).await;
        if (by_document, by_server) != (taken, taken) {
            disagreements.push(format!(
                "{} {} {input:?} = {value}: expected taken = {taken}, the document says \
                 {by_document}, the server {by_server}",
                operation.method, operation.documented
            ));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[tokio::test]
async fn operation_ids_are_unique_and_every_link_follows_one() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();

    let operations: Vec<&Value> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|path| path.as_object().unwrap().values())
        .collect();
    let mut ids: Vec<&str> = operations
        .iter()
        .map(|o| o["operationId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count, "repeated operation ids: {ids:?}");
    let links: Vec<&Value> = operations
        .iter()
        .filter_map(|o| o["responses"].as_object())
        .flat_map(|responses| responses.values())
        .filter_map(|response| response["links"].as_object())
        .flat_map(|links| links.values())
        .collect();
    // Stateful fuzzing follows them: a created portfolio to its routes, a position to its own.
    assert!(links.len() >= 10, "{} links", links.len());
    for link in links {
        let target = link["operationId"].as_str();
        assert!(
            target.is_some_and(|t| ids.contains(&t)),
            "a link to no operation: {link}"
        );
    }
}
