//! The test harness: fresh databases, the app in-process on `127.0.0.1:0`, the binary as a
//! subprocess, and a TCP proxy in front of Postgres that can be cut, restored or slowed.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use figment::Figment;
use serde_json::Value;
use sigmasight::auth::token::Keys;
use sigmasight::auth::Role;
use sigmasight::config::{Config, DatabaseUrl, Secret};
use sigmasight::server::Server;
use sqlx::{Connection, Executor, PgConnection};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use url::Url;

/// The token-signing key of every test app and binary (tests forge tokens with it).
pub const TEST_SECRET_KEY: &str = "test-secret-key-of-at-least-32-bytes-0123456789";

/// The password of every user a test creates.
pub const TEST_PASSWORD: &str = "a test password, long enough";

/// The keys a test app signs with, to forge tokens (expired ones, other versions).
pub fn test_keys() -> Keys {
    Keys::new(
        Secret::new(TEST_SECRET_KEY),
        None,
        Duration::from_secs(3600),
    )
}

/// A user created by a test, logged in.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// `users.id`.
    pub id: uuid::Uuid,
    /// A unique address.
    pub email: String,
    /// A bearer token from `POST /api/v1/auth/login`.
    pub token: String,
}

/// The server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must name a PostgreSQL server where tests may create databases; \
         scripts/test.sh starts a throwaway one",
    )
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let mut url = Url::parse(url).expect("a valid URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A new, empty database; its URL.
pub async fn fresh_database() -> String {
    let admin = admin_url();
    let name = format!("sigmasight_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("connect to DATABASE_URL");
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .expect("create a test database");
    conn.close().await.ok();
    with_database(&admin, &name)
}

/// A new database with every migration applied; its URL.
pub async fn migrated_database() -> String {
    let url = fresh_database().await;
    sigmasight::migrate::run(&DatabaseUrl::parse(&url).unwrap())
        .await
        .expect("migrate a fresh database");
    url
}

/// A direct connection, for arranging and asserting.
pub async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .expect("connect to the test database")
}

/// A configuration over the defaults: `database_url` plus `customize`'s values.
pub fn config(database_url: &str, customize: impl FnOnce(Figment) -> Figment) -> Config {
    let figment = customize(
        sigmasight::config::defaults()
            .merge(("database_url", database_url))
            .merge(("secret_key", TEST_SECRET_KEY)),
    );
    Config::from_figment(&figment).expect("a valid test configuration")
}

/// The application served in-process on `127.0.0.1:0`.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The database it serves from.
    pub database_url: String,
    /// `http://127.0.0.1:<METRICS_PORT>` when the metrics listener is on.
    pub metrics_address: Option<String>,
    /// A client with no proxy and a generous timeout.
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// On a fresh database, migrated by the app at start-up; returns once it is ready.
    pub async fn spawn() -> Self {
        let app = Self::spawn_with(&fresh_database().await, |f| f).await;
        app.wait_until_ready().await;
        app
    }

    /// With `database_url` and configuration of the test's choosing; returns once bound.
    pub async fn spawn_with(
        database_url: &str,
        customize: impl FnOnce(Figment) -> Figment,
    ) -> Self {
        let config = config(database_url, customize);
        let server = Server::bind(config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("bind the test server");
        let address = format!("http://{}", server.local_addr().unwrap());
        let metrics_address = server
            .metrics_addr()
            .map(|addr| format!("http://{}", addr.unwrap()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            address,
            database_url: database_url.to_owned(),
            metrics_address,
            client: client(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// On a migrated database reached through a [`DbProxy`] the test can cut or slow down;
    /// returns once readiness is 200.
    pub async fn spawn_behind_proxy(customize: impl FnOnce(Figment) -> Figment) -> (Self, DbProxy) {
        let database = migrated_database().await;
        let proxy = DbProxy::start(&database).await;
        let app = Self::spawn_with(&proxy.url(&database), |f| {
            customize(f.merge(("migrate_on_start", false)))
        })
        .await;
        app.wait_until_ready().await;
        (app, proxy)
    }

    /// The backend of the app's user-cache listener once it listens (its pid), waiting up to
    /// 10 s; from then on the cache keeps the users requests read (crate::auth::cache).
    pub async fn user_listener(&self) -> i32 {
        let name = Url::parse(&self.database_url).unwrap().path()[1..].to_owned();
        let mut admin = connect(&admin_url()).await;
        for _ in 0..200 {
            let pid: Option<i32> = sqlx::query_scalar(
                "SELECT pid FROM pg_stat_activity
                 WHERE datname = $1 AND application_name = $2 AND state = 'idle'
                   AND query LIKE 'LISTEN%'",
            )
            .bind(&name)
            .bind(sigmasight::auth::invalidation::APPLICATION_NAME)
            .fetch_optional(&mut admin)
            .await
            .unwrap();
            if let Some(pid) = pid {
                // LISTEN has returned to the app, which turns the cache on right after.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the user-cache listener did not start listening within 10 s");
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    /// A request to `path` carrying `token` as a bearer token.
    pub fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token)
    }

    /// GET `path` with `token`.
    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.authed(reqwest::Method::GET, path, token)
            .send()
            .await
            .expect("request")
    }

    /// `method` `path` with `token` and a JSON body.
    pub async fn send_json_as(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.authed(method, path, token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Inserts a daily bar for `symbol` on `date` (YYYY-MM-DD) with every price at `close`.
    pub async fn insert_bar(&self, symbol: &str, date: &str, close: &str) {
        sqlx::query(
            "INSERT INTO daily_prices (symbol, date, open, high, low, close, adj_close, volume, source)
             VALUES ($1, $2::date, $3::numeric, $3::numeric, $3::numeric, $3::numeric, NULL, 1000, 'test')
             ON CONFLICT (symbol, date) DO UPDATE SET close = EXCLUDED.close, open = EXCLUDED.open,
                 high = EXCLUDED.high, low = EXCLUDED.low, updated_at = now()",
        )
        .bind(symbol)
        .bind(date)
        .bind(close)
        .execute(&mut connect(&self.database_url).await)
        .await
        .expect("insert a bar");
    }

    /// Inserts `count` daily bars for `symbol`, one a day from 2024-01-01, with prices that
    /// differ from bar to bar (a body that compresses as real bars do, not a run of repeats).
    pub async fn insert_bars(&self, symbol: &str, count: i32) {
        sqlx::query(
            "INSERT INTO daily_prices (symbol, date, open, high, low, close, adj_close, volume, source)
             SELECT $1, DATE '2024-01-01' + i, 100 + i * 0.37, 101 + i * 0.41, 99 + i * 0.29,
                    100 + i * 0.31, 100 + i * 0.3, 1000000 + i * 7919, 'test'
             FROM generate_series(0, $2 - 1) AS i",
        )
        .bind(symbol)
        .bind(count)
        .execute(&mut connect(&self.database_url).await)
        .await
        .expect("insert bars");
    }

    /// POST `body` to `/api/v1/auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/auth/login", self.address))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .expect("request")
    }

    /// POST a login from the client `forwarded` names in `header` (`x-forwarded-for` or
    /// `x-real-ip`): for an app that trusts a proxy.
    pub async fn login_via(
        &self,
        header: &str,
        forwarded: &str,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/auth/login", self.address))
            .header(header, forwarded)
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .expect("request")
    }

    /// Creates a user with `role` and [`TEST_PASSWORD`] directly in the database.
    pub async fn create_user(&self, role: Role) -> (uuid::Uuid, String) {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        let hash = sigmasight::auth::password::hash(TEST_PASSWORD).unwrap();
        let id: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO users (email, password_hash, role) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(&email)
        .bind(hash)
        .bind(role.as_str())
        .fetch_one(&mut connect(&self.database_url).await)
        .await
        .expect("insert a user");
        (id, email)
    }

    /// A new user with `role`, logged in through the API.
    pub async fn user(&self, role: Role) -> TestUser {
        let (id, email) = self.create_user(role).await;
        let response = self.login(&email, TEST_PASSWORD).await;
        assert_eq!(response.status(), 200, "login of a fresh user");
        let body: Value = response.json().await.unwrap();
        TestUser {
            id,
            email,
            token: body["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Polls readiness until 200 (10 s at most).
    pub async fn wait_until_ready(&self) {
        let ready = poll(Duration::from_secs(10), || async {
            self.get("/api/v1/health").await.status() == 200
        })
        .await;
        assert!(ready, "the app did not become ready within 10 s");
    }

    /// Triggers graceful shutdown without waiting for it (the shutdown signal's moment).
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Triggers graceful shutdown and returns what `run_until` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .take()
            .unwrap()
            .await
            .expect("the server task panicked")
    }
}

/// An HTTP client for tests: no proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Calls `check` every 50 ms until it returns true or `within` passes; whether it did.
pub async fn poll<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP proxy in front of Postgres that a test can cut (existing connections dropped, new ones
/// refused), restore, or slow down (a delay before each chunk the server sends back).
pub struct DbProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    down: AtomicBool,
    delay_ms: AtomicU64,
    connections: Mutex<Vec<JoinHandle<()>>>,
}

impl DbProxy {
    /// Starts a proxy to the server of `database_url`.
    pub async fn start(database_url: &str) -> Self {
        let url = Url::parse(database_url).unwrap();
        let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState::default());
        let accept_state = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if accept_state.down.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let state = Arc::clone(&accept_state);
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(&target).await {
                        forward(inbound, outbound, state).await;
                    }
                });
                accept_state.connections.lock().unwrap().push(task);
            }
        });
        Self { addr, state }
    }

    /// `database_url` rewritten to go through this proxy.
    pub fn url(&self, database_url: &str) -> String {
        let mut url = Url::parse(database_url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.addr.port())).unwrap();
        url.to_string()
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.state.down.store(true, Ordering::SeqCst);
        for task in self.state.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.state.down.store(false, Ordering::SeqCst);
    }

    /// Delays every chunk from the server by `delay`.
    pub fn slow_down(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

async fn forward(inbound: TcpStream, outbound: TcpStream, state: Arc<ProxyState>) {
    let (mut client_read, mut client_write) = inbound.into_split();
    let (mut server_read, mut server_write) = outbound.into_split();
    let upstream = tokio::io::copy(&mut client_read, &mut server_write);
    let downstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let delay = state.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = upstream => {}
        () = downstream => {}
    }
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `sigmasight` binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_sigmasight")
}

/// Runs the binary to completion with only `env` in its environment and `stdin` as its input.
pub fn run_binary_with_stdin(
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(binary())
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("run the binary")
}

/// Runs the binary to completion with only `env` in its environment.
pub fn run_binary(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(binary())
        .args(args)
        .env_clear()
        .env("SECRET_KEY", TEST_SECRET_KEY)
        .envs(env.iter().copied())
        .output()
        .expect("run the binary")
}

/// The binary running in the background, its stdout (JSON log lines, and the plain summary
/// line some commands end with) and stderr collected.
pub struct Process {
    child: tokio::process::Child,
    /// The port it was told to listen on.
    pub port: u16,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Process {
    /// Starts `sigmasight serve` on a free port with only `env` (plus `PORT`) in its environment.
    pub fn serve(env: &[(&str, &str)]) -> Self {
        Self::start(&["serve"], env)
    }

    /// Starts the binary with `args` and only `env` (plus `PORT`, a free port) in its
    /// environment.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut child = tokio::process::Command::new(binary())
            .args(args)
            .env_clear()
            .env("SECRET_KEY", TEST_SECRET_KEY)
            .envs(env.iter().copied())
            .env("PORT", port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the binary");
        let (stdout, out_reader) = collect(child.stdout.take().unwrap());
        let (stderr, err_reader) = collect(child.stderr.take().unwrap());
        Self {
            child,
            port,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    /// Every stderr line so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// The most resident memory the process has held so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("the process is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }

    /// `http://127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether GET `path` answers 200 within `within` (polled).
    pub async fn answers_ok_within(&self, path: &str, within: Duration) -> bool {
        let url = format!("{}{path}", self.address());
        let client = client();
        poll(within, || async {
            matches!(client.get(&url).send().await, Ok(r) if r.status() == 200)
        })
        .await
    }

    /// Waits until `/health` answers 200 (10 s at most).
    pub async fn wait_until_live(&self) {
        let live = self
            .answers_ok_within("/health", Duration::from_secs(10))
            .await;
        assert!(
            live,
            "the binary did not answer /health within 10 s: {:?}",
            self.log_lines()
        );
    }

    /// Every stdout line so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Every stdout log line so far, parsed as JSON (a line that starts like a JSON object but
    /// is not one fails the test); plain sentences such as a closing summary are skipped.
    pub fn logs(&self) -> Vec<Value> {
        self.log_lines()
            .iter()
            .filter(|l| l.starts_with('{'))
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
            })
            .collect()
    }

    /// Waits (5 s at most) for a log line matching `predicate`.
    pub async fn wait_for_log(&self, predicate: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        poll(Duration::from_secs(5), || {
            found = self.logs().into_iter().find(|l| predicate(l));
            std::future::ready(found.is_some())
        })
        .await;
        found.unwrap_or_else(|| panic!("no matching log line in {:#?}", self.log_lines()))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("the process is running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("send SIGTERM");
    }

    /// Waits for the process to exit (`within` at most), then for its last output lines.
    pub async fn wait(&mut self, within: Duration) -> ExitStatus {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .expect("the process did not exit in time")
            .expect("wait for the process");
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        status
    }
}

/// Collects a child's output lines as they come; the task ends with the stream.
fn collect(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> (Arc<Mutex<Vec<String>>>, JoinHandle<()>) {
    let collected = Arc::new(Mutex::new(Vec::new()));
    let lines = Arc::clone(&collected);
    let mut reader = BufReader::new(stream).lines();
    let task = tokio::spawn(async move {
        while let Ok(Some(line)) = reader.next_line().await {
            lines.lock().unwrap().push(line);
        }
    });
    (collected, task)
}
