use std::time::Duration;

use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use sigmasight::http::extract::Json;

use crate::helpers::{client, config, TestApp};

fn assert_error_shape(body: &Value, code: &str) {
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        error["request_id"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    name: String,
    count: u32,
}

/// A route of the test's own behind the application's middleware, to exercise the JSON
/// extractor and body limits.
async fn spawn_echo(body_limit: u64) -> String {
    let config = config("postgres://unused@127.0.0.1:9/unused", |f| {
        f.merge(("request_body_limit_bytes", body_limit))
    });
    let routes = Router::new().route(
        "/echo",
        post(|Json(p): Json<Payload>| async move { Json(p) }),
    );
    let app = sigmasight::http::with_middleware(routes, &config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

#[tokio::test]
async fn an_unknown_route_is_a_404_in_the_error_shape() {
    let app = TestApp::spawn().await;

    let response = app.get("/api/v1/nope").await;

    assert_eq!(response.status(), 404);
    assert_error_shape(&response.json().await.unwrap(), "not_found");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_in_the_error_shape() {
    let app = TestApp::spawn().await;

    for path in ["/health", "/api/v1/health"] {
        let response = app
            .client
            .delete(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{path}");
        assert_error_shape(&response.json().await.unwrap(), "method_not_allowed");
    }
}

#[tokio::test]
async fn json_bodies_are_checked_and_each_failure_has_its_own_code() {
    let address = spawn_echo(1024 * 1024).await;
    let client = client();
    let post = |body: &'static str, content_type: &'static str| {
        client
            .post(format!("{address}/echo"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let ok = post(r#"{"name":"a","count":1}"#, "application/json")
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.json::<Value>().await.unwrap(),
        json!({"name": "a", "count": 1})
    );

    let cases = [
        (r#"{"name":"a","#, "application/json", 400, "bad_request"),
        (
            r#"{"name":"a","count":-1}"#,
            "application/json",
            422,
            "validation_failed",
        ),
        (
            r#"{"name":"a","count":1,"extra":true}"#,
            "application/json",
            422,
            "validation_failed",
        ),
        (
            r#"{"name":"a","count":1}"#,
            "text/plain",
            415,
            "unsupported_media_type",
        ),
    ];
    for (body, content_type, status, code) in cases {
        let response = post(body, content_type).await.unwrap();
        assert_eq!(response.status(), status, "{body} as {content_type}");
        assert_error_shape(&response.json().await.unwrap(), code);
    }
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_a_413_on_any_route() {
    let app = TestApp::spawn().await;
    let body = vec![b'x'; 1024 * 1024 + 1];

    let response = app
        .client
        .post(format!("{}/health", app.address))
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_error_shape(&body, "payload_too_large");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1048576"));
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_a_413() {
    let address = spawn_echo(64).await;
    // A chunked body declares no length: only reading it reveals its size.
    let filler = "a".repeat(200);
    let json = format!(r#"{{"name":"{filler}","count":1}}"#);
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{json}\r\n0\r\n\r\n",
        json.len()
    );

    let response = raw_http(&address, &request).await;

    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    let body: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_error_shape(&body, "payload_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("64 bytes"),
        "{body}"
    );
}

/// Sends `request` as is and reads the whole answer (the request must say `Connection: close`).
async fn raw_http(address: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn a_request_past_the_timeout_gets_a_timeout_error() {
    let (app, proxy) =
        TestApp::spawn_behind_proxy(|f| f.merge(("request_timeout_seconds", 1))).await;
    // Slower than the request timeout, faster than readiness's own 2 s database timeout.
    proxy.slow_down(Duration::from_millis(1500));

    let response = app.get("/api/v1/health").await;

    assert_eq!(response.status(), 503);
    assert_error_shape(&response.json().await.unwrap(), "timeout");
}

/// Log lines captured in memory.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_internal_error_is_opaque_to_the_client_and_its_cause_is_logged_once() {
    use tower::ServiceExt;
    use tracing_subscriber::layer::SubscriberExt;

    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::registry()
        .with(sigmasight::telemetry::json::JsonLayer::new(logs.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);
    let config = config("postgres://unused@127.0.0.1:9/unused", |f| f);
    let routes = Router::new().route(
        "/boom",
        axum::routing::get(|| async {
            Err::<(), _>(sigmasight::http::AppError::Internal(anyhow::anyhow!(
                "relation \"secret_table\" does not exist"
            )))
        }),
    );
    let request = axum::http::Request::get("/boom")
        .header("x-request-id", "boom-1")
        .body(axum::body::Body::empty())
        .unwrap();

    let response = sigmasight::http::with_middleware(routes, &config)
        .oneshot(request)
        .await
        .unwrap();

    assert_eq!(response.status(), 500);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": "internal", "message": "internal server error", "request_id": "boom-1"}})
    );
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let causes: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| {
            l["error"]
                .as_str()
                .is_some_and(|e| e.contains("secret_table"))
        })
        .collect();
    assert_eq!(causes.len(), 1, "{text}");
    assert_eq!(causes[0]["level"], "error");
    assert_eq!(causes[0]["request_id"], "boom-1");
}
