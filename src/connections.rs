//! The accept loop: HTTP/1.1 connections served by hyper with a timer, so that a client which
//! sends headers slowly (or nothing at all) is cut off after `HEADER_READ_TIMEOUT_SECONDS`, and
//! at most `MAX_CONNECTIONS` open at once; past that, new clients wait in the listen backlog
//! instead of costing memory and file descriptors. Once the server is [`Draining`], every
//! response carries `Connection: close` and its connection closes after it: a keep-alive client
//! learns from the response itself not to send again, instead of finding its next request
//! unanswered on a connection closed under it. On shutdown the listener closes (new connections
//! are refused), idle connections close, and the call returns once every request in flight has
//! been answered.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::header::CONNECTION;
use axum::http::HeaderValue;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::http::App;
use crate::shutdown::Draining;

/// What one connection may cost.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// How long a request's headers may take to arrive, counted from when the connection is
    /// ready for them (so also how long a keep-alive connection may sit idle).
    pub header_read_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains: see the module docs.
pub async fn serve(
    listener: TcpListener,
    app: impl App,
    limits: ConnectionLimits,
    draining: Draining,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let (slot, (stream, peer)) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        let app = app.clone();
        let draining = draining.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            // The peer address feeds the login limits (`http::client_address`).
            request.extensions_mut().insert(ConnectInfo(peer));
            let response = app.clone().oneshot(request);
            let draining = draining.clone();
            async move {
                let mut response = response.await?;
                // hyper closes the connection once a response saying so is written.
                if draining.is_draining() {
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Header timeouts, resets and malformed requests: the client's problem, and
                // common enough on the internet not to warrant more than debug.
                tracing::debug!(error = %error, peer = %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The next connection, once fewer than the maximum are open. Accept errors that concern one
/// connection are skipped; others (out of file descriptors) are retried after a pause rather
/// than spun on.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> (tokio::sync::OwnedSemaphorePermit, (TcpStream, SocketAddr)) {
    let Ok(slot) = Arc::clone(slots).acquire_owned().await else {
        // The semaphore is never closed; pending forever leaves the shutdown branch to end it.
        return std::future::pending().await;
    };
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // Responses are written whole; waiting for more to coalesce only adds latency.
                let _ = stream.set_nodelay(true);
                return (slot, (stream, peer));
            }
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                tracing::warn!(error = %error, "accept failed; retrying in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
