//! The shutdown signal: SIGTERM (what Railway and `docker stop` send to PID 1) or SIGINT
//! (Ctrl-C), and the state it puts the server in.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Resolves when the process is asked to stop.
pub async fn signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    let name = tokio::select! {
        () = interrupt => "SIGINT",
        () = terminate => "SIGTERM",
    };
    tracing::info!(signal = name, "shutdown requested");
}

/// Whether the server is shutting down: set once, at the shutdown signal, and read by readiness
/// (503 from then on) and by the connections (each response from then on closes its own).
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// From now on, the server is draining.
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the server is draining.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
