//! What the benchmark's helper servers share: serving a router on a loopback listener on the
//! port named by their only argument, announced on stdout for `scripts/bench/bench.py` to read.

use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use tokio::net::TcpListener;

/// Binds `127.0.0.1:PORT` (the first argument; 0 or none picks a free port) and prints
/// `listening on ADDR`.
async fn listener_from_args() -> anyhow::Result<TcpListener> {
    let port: u16 = match std::env::args().nth(1) {
        Some(text) => text.parse().map_err(|_| {
            anyhow::anyhow!("PORT: expected a number from 0 to 65535, got {text:?}")
        })?,
        None => 0,
    };
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    println!("listening on {}", listener.local_addr()?);
    Ok(listener)
}

/// Serves `app` on [`listener_from_args`] until the process is stopped.
pub async fn serve(app: Router) -> anyhow::Result<()> {
    axum::serve(listener_from_args().await?, app).await?;
    Ok(())
}
