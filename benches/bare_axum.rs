//! The ceiling for `/health` in `scripts/bench.sh`: a bare axum "hello" server with the same
//! runtime, allocator and response body as `sigmasight serve`'s liveness route, and nothing else
//! (no middleware, no state, no logging). The service's throughput is reported as a ratio of
//! this one's, measured in the same run on the same machine.
//!
//! Usage: `bare-axum PORT` (0 picks a free port); prints `listening on ADDR` once bound.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

mod support;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    support::serve(Router::new().route("/health", get(health))).await
}
