//! `sigmasight serve`: bind, optionally migrate, serve until asked to stop, drain, close.
//!
//! Split in two so tests can bind `127.0.0.1:0` and choose their own shutdown future:
//! [`Server::bind`] builds and binds, [`Server::run_until`] serves.

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::auth::cache::UserCache;
use crate::auth::invalidation::Invalidation;
use crate::auth::rate_limit::LoginLimits;
use crate::auth::token::Keys;
use crate::auth::verification::Verifier;
use crate::config::{Config, DatabaseUrl};
use crate::connections::{self, ConnectionLimits};
use crate::http::{self, AppState, Shared};
use crate::metrics::{Metrics, MetricsState};
use crate::shutdown::{self, Draining};
use crate::{db, migrate};

/// How long closing the pool may take after the last request.
const POOL_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A bound, ready-to-run server.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    /// The metrics listener, when `METRICS_PORT` is set.
    metrics: Option<TcpListener>,
}

impl Server {
    /// Builds the application state (the pool connects lazily) and binds `addr`; with
    /// `METRICS_PORT`, also that port on `addr`'s IP address, for the metrics.
    pub async fn bind(config: Config, addr: SocketAddr) -> anyhow::Result<Self> {
        let migrations = migrate::Status::new(if config.migrate_on_start {
            migrate::State::Pending
        } else {
            migrate::State::Skipped
        });
        let secret_key = config
            .secret_key
            .clone()
            .context("SECRET_KEY is required to serve")?;
        let tokens = Keys::new(
            secret_key,
            config.secret_key_previous.clone(),
            config.access_token_ttl,
        );
        let state = AppState::new(Shared {
            db: db::pool(&config),
            tokens: Arc::new(tokens),
            login_limits: Arc::new(LoginLimits::default()),
            verifier: Arc::new(Verifier::new(
                config.password_hash_concurrency,
                config.password_hash_queue,
            )),
            metrics: config.metrics_port.map(|_| Arc::new(Metrics::new())),
            users: Arc::new(UserCache::new()),
            draining: Draining::default(),
            config: Arc::new(config),
            migrations,
        });
        let listener = listen(addr).with_context(|| format!("cannot listen on {addr}"))?;
        let metrics = match state.config.metrics_port {
            Some(port) => {
                let addr = SocketAddr::new(addr.ip(), port);
                let listener = listen(addr)
                    .with_context(|| format!("cannot listen on {addr} (METRICS_PORT)"))?;
                Some(listener)
            }
            None => None,
        };
        Ok(Self {
            listener,
            state,
            metrics,
        })
    }

    /// The address of the metrics listener, if there is one.
    pub fn metrics_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.metrics.as_ref().map(TcpListener::local_addr)
    }

    /// The address actually bound (the real port when bound to port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves; then, for `SHUTDOWN_DRAIN_SECONDS`, answers 503 to
    /// readiness and closes each connection after its next response while still accepting and
    /// serving (a load balancer's health checks take the replica out meanwhile); then stops
    /// accepting, lets in-flight requests finish within `SHUTDOWN_GRACE_SECONDS`, and closes
    /// the pool. With `MIGRATE_ON_START`, pending migrations are applied in the background
    /// meanwhile (retried while the database is unreachable); readiness answers 503 until they
    /// are done, and a migration that fails for good stops the server with an error.
    pub async fn run_until<F>(self, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Self {
            listener,
            state,
            metrics,
        } = self;
        let config = Arc::clone(&state.config);
        let addr = listener.local_addr()?;
        tracing::info!(
            address = %addr,
            version = crate::version::VERSION,
            commit = crate::version::GIT_COMMIT,
            database = %config.database_url.redacted(),
            "listening"
        );

        let migration_failed = Arc::new(Notify::new());
        let migrations = config.migrate_on_start.then(|| {
            tokio::spawn(migrate_until_applied(
                config.migration_url().clone(),
                state.migrations.clone(),
                Arc::clone(&migration_failed),
            ))
        });

        let invalidation = Invalidation::start(
            config.database_url.connect_options(),
            state.db.clone(),
            Arc::clone(&state.users),
        );

        let (draining_tx, mut draining_rx) = watch::channel(false);
        let mut metrics_draining = draining_rx.clone();
        let draining = state.draining.clone();
        let stop = async move {
            let asked = tokio::select! {
                () = shutdown => true,
                () = migration_failed.notified() => false,
            };
            // Readiness fails first, while every connection is still served: a request a
            // balancer sends now gets its answer (with `Connection: close`). Closing connections
            // first would leave a request sent on one of them unanswered, a failure no balancer
            // may retry. A server that never became ready has no balancer to warn.
            draining.start();
            if asked && !config.shutdown_drain.is_zero() {
                tracing::info!(
                    drain_s = config.shutdown_drain.as_secs(),
                    "readiness now answers 503; still serving until the load balancer stops sending"
                );
                tokio::time::sleep(config.shutdown_drain).await;
            }
            tracing::info!(
                grace_s = config.shutdown_grace.as_secs(),
                "no longer accepting connections; draining in-flight requests"
            );
            let _ = draining_tx.send(true);
        };
        let grace = state.config.shutdown_grace;
        let deadline = async move {
            let _ = draining_rx.wait_for(|draining| *draining).await;
            tokio::time::sleep(grace).await;
        };

        let limits = ConnectionLimits {
            header_read_timeout: state.config.header_read_timeout,
            max_connections: state.config.max_connections,
        };
        let metrics = metrics.map(|listener| {
            let stop = async move {
                let _ = metrics_draining.wait_for(|draining| *draining).await;
            };
            tokio::spawn(serve_metrics(listener, &state, limits, stop))
        });
        let serve = connections::serve(
            listener,
            http::app(state.clone()),
            limits,
            state.draining.clone(),
            stop,
        );
        let drained = tokio::select! {
            () = serve => true,
            () = deadline => {
                tracing::warn!(
                    grace_s = grace.as_secs(),
                    "grace period elapsed with requests still in flight; cutting them off"
                );
                false
            }
        };

        if let Some(task) = metrics {
            // Scrapes are short; one still running when the API is done is cut off.
            task.abort();
            let _ = task.await;
        }

        // A migration task still retrying is stopped; one that failed for good (which is what
        // stopped the server) is awaited for its error: it may have signalled the failure a
        // moment before returning it, and an aborted task that already returned keeps its result.
        let outcome = match migrations {
            Some(task) => {
                task.abort();
                match task.await {
                    Ok(Err(error)) => {
                        Err(anyhow::Error::new(error).context("start-up migrations failed"))
                    }
                    _ => Ok(()),
                }
            }
            None => Ok(()),
        };
        // Like the pool below: waited for only when the requests finished in time.
        invalidation
            .stop(if drained {
                POOL_CLOSE_TIMEOUT
            } else {
                Duration::ZERO
            })
            .await;
        // Closing marks the pool closed at once; waiting for connections still checked out by
        // requests makes sense only if those requests have finished.
        let closing = state.db.close();
        if drained
            && tokio::time::timeout(POOL_CLOSE_TIMEOUT, closing)
                .await
                .is_err()
        {
            tracing::warn!("closing the database pool timed out");
        }
        if outcome.is_ok() {
            tracing::info!("shutdown complete");
        }
        outcome
    }
}

/// `sigmasight serve`: listens on `[::]:PORT` (dual-stack) until SIGTERM or SIGINT.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = SocketAddr::from((Ipv6Addr::UNSPECIFIED, config.port));
    let server = match Server::bind(config.clone(), addr).await {
        Ok(server) => server,
        // A host without IPv6 (a kernel booted with ipv6.disable=1) still gets IPv4.
        Err(error) if is_ipv6_unsupported(&error) => {
            tracing::warn!("IPv6 is unavailable; listening on IPv4 only");
            Server::bind(
                config.clone(),
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port)),
            )
            .await?
        }
        Err(error) => return Err(error),
    };
    server.run_until(shutdown::signal()).await
}

/// Serves `GET /metrics` on `listener` until `stop` resolves.
fn serve_metrics(
    listener: TcpListener,
    state: &AppState,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = ()> + Send + 'static {
    let metrics = MetricsState {
        metrics: state.metrics.clone().unwrap_or_default(),
        db: state.db.clone(),
        pool_max: state.config.database_pool_size,
        login_limits: Arc::clone(&state.login_limits),
        verifier: Arc::clone(&state.verifier),
        users: Arc::clone(&state.users),
    };
    if let Ok(address) = listener.local_addr() {
        tracing::info!(address = %address, "serving metrics");
    }
    let app = http::with_middleware(crate::metrics::router(metrics), &state.config);
    connections::serve(listener, app, limits, state.draining.clone(), stop)
}

async fn migrate_until_applied(
    url: DatabaseUrl,
    status: migrate::Status,
    failed: Arc<Notify>,
) -> Result<(), migrate::MigrationError> {
    let mut delay = Duration::from_millis(250);
    loop {
        match migrate::command(&url).await {
            Ok(_) => {
                status.set(migrate::State::Applied);
                return Ok(());
            }
            Err(error) if error.is_transient() => {
                tracing::warn!(
                    error = %error,
                    retry_in_ms = delay.as_millis() as u64,
                    "start-up migrations: the database is not reachable yet; retrying"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(error) => {
                tracing::error!(error = %error, "start-up migrations failed; stopping");
                failed.notify_one();
                return Err(error);
            }
        }
    }
}

/// A listener on `addr`; for `[::]`, dual-stack (IPv4 clients arrive as mapped addresses)
/// whatever the host's `bindv6only` default.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

fn is_ipv6_unsupported(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.raw_os_error() == Some(97)) // EAFNOSUPPORT
}
