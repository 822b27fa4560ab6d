use serde_json::Value;

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
