//! Configuration: built-in defaults, then the optional TOML file named by `SIGMASIGHT_CONFIG`,
//! then the environment (the plain names Railway and compose set: `DATABASE_URL`, `PORT`, ...).
//!
//! Every value is validated before any socket opens; a bad one is reported as one sentence that
//! names the key and where the value came from (see [`ConfigError`]).

mod database_url;
mod error;
mod secret;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use database_url::{redact, DatabaseUrl};
pub use error::ConfigError;
pub use secret::Secret;

/// The environment variable naming an optional TOML configuration file.
pub const CONFIG_FILE_VAR: &str = "SIGMASIGHT_CONFIG";

/// Every key, in the order `sigmasight config` prints them. In the environment each is spelt in
/// capitals (`database_url` → `DATABASE_URL`); in the TOML file, as here.
pub const KEYS: &[&str] = &[
    "database_url",
    "database_migration_url",
    "database_pool_size",
    "database_pool_timeout_seconds",
    "database_pool_recycle_seconds",
    "migrate_on_start",
    "port",
    "cors_allowed_origins",
    "request_timeout_seconds",
    "request_body_limit_bytes",
    "shutdown_grace_seconds",
    "header_read_timeout_seconds",
    "max_connections",
    "trusted_proxy_hops",
    "client_address_header",
    "password_hash_concurrency",
    "password_hash_queue",
    "log_level",
    "log_format",
    "fmp_api_key",
    "polygon_api_key",
    "fmp_base_url",
    "polygon_base_url",
    "etl_primary_provider",
    "fmp_requests_per_minute",
    "polygon_requests_per_minute",
    "etl_request_timeout_seconds",
    "etl_deadline_seconds",
    "etl_max_retries",
    "etl_batch_size",
    "etl_benchmark_symbols",
    "etl_lookback_days",
    "secret_key",
    "secret_key_previous",
    "access_token_ttl_seconds",
];

/// Keys whose values are secrets (or contain one): never printed, never quoted in errors.
const SECRET_KEYS: &[&str] = &[
    "database_url",
    "database_migration_url",
    "fmp_api_key",
    "polygon_api_key",
    "secret_key",
    "secret_key_previous",
];

/// The shortest token-signing key accepted, in bytes: HS256's own output size.
pub const MIN_SECRET_KEY_BYTES: usize = 32;

/// The validated configuration of one process.
#[derive(Debug, Clone)]
pub struct Config {
    /// The service's database (`DATABASE_URL`).
    pub database_url: DatabaseUrl,
    /// The schema owner's URL for migrations (`DATABASE_MIGRATION_URL`); `database_url` if unset.
    pub database_migration_url: Option<DatabaseUrl>,
    /// Most connections the pool opens.
    pub database_pool_size: u32,
    /// How long a request waits for a pooled connection (the seed's `pool_timeout`).
    pub database_pool_timeout: Duration,
    /// Connections older than this are closed and replaced (the seed's `pool_recycle`).
    pub database_pool_recycle: Duration,
    /// Whether `serve` applies pending migrations at start-up.
    pub migrate_on_start: bool,
    /// The TCP port to listen on, on every address (`[::]`, dual-stack).
    pub port: u16,
    /// Origins a browser may call the API from.
    pub cors_allowed_origins: Vec<String>,
    /// A request still running after this gets a timeout error.
    pub request_timeout: Duration,
    /// Largest request body accepted.
    pub request_body_limit_bytes: usize,
    /// How long in-flight requests get to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// How long a connection may take to send a request's headers (and may sit idle between
    /// requests) before it is closed.
    pub header_read_timeout: Duration,
    /// Most connections open at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Who the client of a request is, for the login limits.
    pub client_address: ClientAddressRule,
    /// Most password verifications running at once (argon2id, 19 MiB each).
    pub password_hash_concurrency: usize,
    /// Most logins waiting for a verification slot; past that a login gets 503.
    pub password_hash_queue: usize,
    /// A `tracing` filter: a level or directives such as `info,sqlx=warn`.
    pub log_level: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// The ETL's market-data providers and limits.
    pub etl: EtlConfig,
    /// The key that signs access tokens (`SECRET_KEY`, at least 32 bytes). Only `serve` needs
    /// it, so it is optional here and `serve` refuses to start without it.
    pub secret_key: Option<Secret>,
    /// The key before the last rotation (`SECRET_KEY_PREVIOUS`): tokens it signed are still
    /// accepted until they expire; new tokens are signed with `secret_key` only.
    pub secret_key_previous: Option<Secret>,
    /// How long an access token is valid.
    pub access_token_ttl: Duration,
    sources: BTreeMap<&'static str, String>,
}

/// What `sigmasight etl` needs beyond the database: providers, their keys and limits.
#[derive(Debug, Clone)]
pub struct EtlConfig {
    /// Financial Modeling Prep's API key (`FMP_API_KEY`); unset disables FMP.
    pub fmp_api_key: Option<Secret>,
    /// Polygon's API key (`POLYGON_API_KEY`); unset disables Polygon.
    pub polygon_api_key: Option<Secret>,
    /// FMP's base URL (a proxy or a test double may stand in).
    pub fmp_base_url: url::Url,
    /// Polygon's base URL.
    pub polygon_base_url: url::Url,
    /// The provider asked first; the other one is the fallback.
    pub primary_provider: Provider,
    /// Most requests a minute sent to FMP.
    pub fmp_requests_per_minute: u32,
    /// Most requests a minute sent to Polygon.
    pub polygon_requests_per_minute: u32,
    /// How long one HTTP request may take, retries excluded.
    pub request_timeout: Duration,
    /// How long a whole run may take; what is left is recorded as failed.
    pub deadline: Duration,
    /// Retries of one request after a transient failure.
    pub max_retries: u32,
    /// Bars written per transaction.
    pub batch_size: usize,
    /// Symbols always fetched, whatever the `symbols` table holds (index ETFs such as SPY).
    pub benchmark_symbols: Vec<String>,
    /// How many calendar days, ending with the latest completed trading day, a run without
    /// dates looks back for days a symbol is missing since its last stored bar.
    pub lookback_days: u32,
}

/// A market-data provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Financial Modeling Prep.
    Fmp,
    /// Polygon (also branded Massive).
    Polygon,
}

impl Provider {
    /// The name stored in `daily_prices.source` and `etl_run.providers`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fmp => "fmp",
            Self::Polygon => "polygon",
        }
    }

    /// The other provider: the fallback when this one is the primary.
    pub fn other(self) -> Self {
        match self {
            Self::Fmp => Self::Polygon,
            Self::Polygon => Self::Fmp,
        }
    }
}

/// Where the client's address is read from: the peer of the connection, unless requests come
/// through proxies the operator trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddressRule {
    /// Proxies in front of the service that each add the address they received from
    /// (`TRUSTED_PROXY_HOPS`); 0 means the connection's peer is the client.
    pub trusted_proxy_hops: u32,
    /// The header those proxies write (`CLIENT_ADDRESS_HEADER`).
    pub header: ClientAddressHeader,
}

/// The header trusted proxies put the client's address in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientAddressHeader {
    /// `X-Forwarded-For`: a list each proxy appends to; the client is the entry
    /// `TRUSTED_PROXY_HOPS` places from the right.
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    /// `X-Real-IP`: one address, written (and overwritten if forged) by the nearest proxy.
    #[serde(rename = "x-real-ip")]
    XRealIp,
}

impl ClientAddressHeader {
    /// The header's name, as `CLIENT_ADDRESS_HEADER` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::XRealIp => "x-real-ip",
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line: for Railway, compose and log shippers.
    Json,
    /// Human-readable lines, for a terminal.
    Pretty,
}

/// The raw shape of the sources before validation. Unknown keys are an error.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    database_migration_url: Option<String>,
    database_pool_size: u32,
    database_pool_timeout_seconds: u64,
    database_pool_recycle_seconds: u64,
    migrate_on_start: bool,
    port: u16,
    cors_allowed_origins: Origins,
    request_timeout_seconds: u64,
    request_body_limit_bytes: u64,
    shutdown_grace_seconds: u64,
    header_read_timeout_seconds: u64,
    max_connections: u64,
    trusted_proxy_hops: u32,
    client_address_header: ClientAddressHeader,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password_hash_concurrency: Option<u32>,
    password_hash_queue: u32,
    log_level: String,
    log_format: LogFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fmp_api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    polygon_api_key: Option<String>,
    fmp_base_url: String,
    polygon_base_url: String,
    etl_primary_provider: Provider,
    fmp_requests_per_minute: u32,
    polygon_requests_per_minute: u32,
    etl_request_timeout_seconds: u64,
    etl_deadline_seconds: u64,
    etl_max_retries: u32,
    etl_batch_size: u32,
    etl_benchmark_symbols: String,
    etl_lookback_days: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_key_previous: Option<String>,
    access_token_ttl_seconds: u64,
}

/// Origins as a comma-separated string (the environment) or a list (TOML).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Origins {
    List(Vec<String>),
    Text(String),
}

impl Default for Raw {
    fn default() -> Self {
        Self {
            database_url: None,
            database_migration_url: None,
            database_pool_size: 10,
            database_pool_timeout_seconds: 30,
            database_pool_recycle_seconds: 1800,
            migrate_on_start: true,
            port: 8000,
            cors_allowed_origins: Origins::Text(
                "http://localhost:3000,http://localhost:3005".to_owned(),
            ),
            request_timeout_seconds: 30,
            request_body_limit_bytes: 1024 * 1024,
            shutdown_grace_seconds: 25,
            // Slowloris: a client that sends a request's headers a byte at a time holds a
            // connection only this long. Idle keep-alive connections close after it too.
            header_read_timeout_seconds: 10,
            // Far above what one replica serves (each connection costs a few KiB), far below
            // the file descriptors a container gets.
            max_connections: 4096,
            trusted_proxy_hops: 0,
            client_address_header: ClientAddressHeader::XForwardedFor,
            // Unset: one verification per CPU (see `password_hash_concurrency()`).
            password_hash_concurrency: None,
            // At ~25 ms a verification on one core, 64 waiting logins are about a second and a
            // half of work on two cores: a client waits that long at most before 503.
            password_hash_queue: 64,
            log_level: "info".to_owned(),
            log_format: LogFormat::Json,
            fmp_api_key: None,
            polygon_api_key: None,
            fmp_base_url: "https://financialmodelingprep.com".to_owned(),
            polygon_base_url: "https://api.polygon.io".to_owned(),
            etl_primary_provider: Provider::Fmp,
            // The plans' limits: FMP Starter allows 300 calls a minute, Polygon's free plan 5.
            fmp_requests_per_minute: 300,
            polygon_requests_per_minute: 5,
            etl_request_timeout_seconds: 30,
            // 50 minutes: a daily cron run finishes in seconds; a backfill that is still going
            // after this records what it could not do instead of overlapping the next day's run.
            etl_deadline_seconds: 3000,
            etl_max_retries: 5,
            etl_batch_size: 5000,
            etl_benchmark_symbols: "SPY".to_owned(),
            // A month, about 21 trading days: two weeks of failed, skipped or cancelled cron
            // runs are still repaired by the next one, and a newly tracked symbol's first run
            // still costs one request per symbol (or, through Polygon's grouped endpoint, at most
            // some 21 requests: four minutes at 5 a minute). Older history is a deliberate
            // backfill (--from/--to).
            etl_lookback_days: 30,
            secret_key: None,
            secret_key_previous: None,
            // An hour: short enough that a leaked token is soon worthless, long enough that a
            // dashboard session does not log in again every few minutes.
            access_token_ttl_seconds: 3600,
        }
    }
}

/// What each key takes, for error messages.
fn expectation(key: &str) -> &'static str {
    match key {
        "database_url" | "database_migration_url" => "a postgres:// URL",
        "database_pool_size" => "an integer 1-1000",
        "database_pool_timeout_seconds" | "request_timeout_seconds" => {
            "a whole number of seconds, 1-3600"
        }
        "database_pool_recycle_seconds" => "a whole number of seconds, 1-86400",
        "shutdown_grace_seconds" => "a whole number of seconds, 0-3600",
        "header_read_timeout_seconds" => "a whole number of seconds, 1-3600",
        "max_connections" => "a number of connections, 1-1000000",
        "trusted_proxy_hops" => "a number of proxies, 0-10",
        "client_address_header" => "x-forwarded-for, or x-real-ip (with TRUSTED_PROXY_HOPS=1)",
        "password_hash_concurrency" => "a number of verifications, 1-1024",
        "password_hash_queue" => "a number of logins, 0-100000",
        "migrate_on_start" => "true or false",
        "port" => "an integer 1-65535",
        "cors_allowed_origins" => {
            "a comma-separated list of origins such as https://app.example.com"
        }
        "request_body_limit_bytes" => "a number of bytes, 1-1073741824",
        "log_level" => {
            "a level (error, warn, info, debug, trace) or directives such as info,sqlx=warn"
        }
        "log_format" => "json or pretty",
        "fmp_api_key" | "polygon_api_key" => "an API key",
        "fmp_base_url" | "polygon_base_url" => "an http:// or https:// URL with no query",
        "etl_primary_provider" => "fmp or polygon",
        "fmp_requests_per_minute" | "polygon_requests_per_minute" => {
            "a number of requests a minute, 1-1000000"
        }
        "etl_request_timeout_seconds" => "a whole number of seconds, 1-600",
        "etl_deadline_seconds" => "a whole number of seconds, 1-86400",
        "etl_max_retries" => "a number of retries, 0-20",
        "etl_batch_size" => "a number of bars, 1-100000",
        "etl_benchmark_symbols" => "a comma-separated list of upper-case symbols such as SPY,QQQ",
        "etl_lookback_days" => "a number of calendar days, 1-366",
        "secret_key" | "secret_key_previous" => "a secret of at least 32 bytes",
        "access_token_ttl_seconds" => "a whole number of seconds, 60-86400",
        _ => "a known key",
    }
}

fn is_secret(key: &str) -> bool {
    SECRET_KEYS.contains(&key)
}

/// The built-in defaults alone (tests merge their own values over them).
pub fn defaults() -> Figment {
    Figment::from(Serialized::defaults(Raw::default()))
}

/// The standard sources: defaults, then `SIGMASIGHT_CONFIG`'s file, then the environment.
pub fn figment() -> Result<Figment, ConfigError> {
    let mut figment = defaults();
    if let Some(path) = std::env::var_os(CONFIG_FILE_VAR) {
        let path = Path::new(&path);
        if !path.is_file() {
            return Err(ConfigError::File {
                path: path.display().to_string(),
                reason: "no such file".to_owned(),
            });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    Ok(figment.merge(Env::raw().only(KEYS)))
}

impl Config {
    /// Loads and validates the configuration from the standard sources.
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_figment(&figment()?)
    }

    /// Validates the configuration held by `figment` (tests build their own).
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let raw: Raw = figment
            .extract()
            .map_err(|e| ConfigError::from_figment(e, figment))?;
        let check = Checker { figment };

        let database_url = match raw.database_url.as_deref() {
            None => {
                return Err(ConfigError::Missing {
                    key: "DATABASE_URL".to_owned(),
                })
            }
            Some(url) => check.database_url("database_url", url)?,
        };
        let database_migration_url = raw
            .database_migration_url
            .as_deref()
            .filter(|url| !url.is_empty())
            .map(|url| check.database_url("database_migration_url", url))
            .transpose()?;
        let etl = check.etl(&raw)?;
        let cors_allowed_origins = check.origins(raw.cors_allowed_origins)?;
        check.range("database_pool_size", raw.database_pool_size.into(), 1, 1000)?;
        check.range(
            "database_pool_timeout_seconds",
            raw.database_pool_timeout_seconds,
            1,
            3600,
        )?;
        check.range(
            "database_pool_recycle_seconds",
            raw.database_pool_recycle_seconds,
            1,
            86_400,
        )?;
        check.range("port", raw.port.into(), 1, 65_535)?;
        check.range(
            "request_timeout_seconds",
            raw.request_timeout_seconds,
            1,
            3600,
        )?;
        check.range(
            "request_body_limit_bytes",
            raw.request_body_limit_bytes,
            1,
            1 << 30,
        )?;
        check.range(
            "shutdown_grace_seconds",
            raw.shutdown_grace_seconds,
            0,
            3600,
        )?;
        check.range(
            "header_read_timeout_seconds",
            raw.header_read_timeout_seconds,
            1,
            3600,
        )?;
        check.range("max_connections", raw.max_connections, 1, 1_000_000)?;
        check.range("trusted_proxy_hops", raw.trusted_proxy_hops.into(), 0, 10)?;
        // X-Real-IP is one address written by the nearest proxy: it means one trusted hop.
        if raw.client_address_header == ClientAddressHeader::XRealIp && raw.trusted_proxy_hops != 1
        {
            return Err(check.invalid(
                "client_address_header",
                format!(
                    "x-real-ip with TRUSTED_PROXY_HOPS={}",
                    raw.trusted_proxy_hops
                ),
            ));
        }
        let password_hash_concurrency = match raw.password_hash_concurrency {
            Some(n) => {
                check.range("password_hash_concurrency", n.into(), 1, 1024)?;
                n as usize
            }
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        check.range(
            "password_hash_queue",
            raw.password_hash_queue.into(),
            0,
            100_000,
        )?;
        check.range(
            "access_token_ttl_seconds",
            raw.access_token_ttl_seconds,
            60,
            86_400,
        )?;
        let secret_key = check.signing_key("secret_key", raw.secret_key.as_deref())?;
        let secret_key_previous =
            check.signing_key("secret_key_previous", raw.secret_key_previous.as_deref())?;
        if tracing_subscriber::EnvFilter::try_new(&raw.log_level).is_err() {
            return Err(check.invalid("log_level", format!("{:?}", raw.log_level)));
        }

        Ok(Self {
            database_url,
            database_migration_url,
            database_pool_size: raw.database_pool_size,
            database_pool_timeout: Duration::from_secs(raw.database_pool_timeout_seconds),
            database_pool_recycle: Duration::from_secs(raw.database_pool_recycle_seconds),
            migrate_on_start: raw.migrate_on_start,
            port: raw.port,
            cors_allowed_origins,
            request_timeout: Duration::from_secs(raw.request_timeout_seconds),
            request_body_limit_bytes: usize::try_from(raw.request_body_limit_bytes)
                .unwrap_or(usize::MAX),
            shutdown_grace: Duration::from_secs(raw.shutdown_grace_seconds),
            header_read_timeout: Duration::from_secs(raw.header_read_timeout_seconds),
            max_connections: usize::try_from(raw.max_connections).unwrap_or(usize::MAX),
            client_address: ClientAddressRule {
                trusted_proxy_hops: raw.trusted_proxy_hops,
                header: raw.client_address_header,
            },
            password_hash_concurrency,
            password_hash_queue: raw.password_hash_queue as usize,
            log_level: raw.log_level,
            log_format: raw.log_format,
            etl,
            secret_key,
            secret_key_previous,
            access_token_ttl: Duration::from_secs(raw.access_token_ttl_seconds),
            sources: KEYS
                .iter()
                .map(|key| (*key, error::source_of(figment, key)))
                .collect(),
        })
    }

    /// The URL migrations run with: the schema owner's if configured, else the service's.
    pub fn migration_url(&self) -> &DatabaseUrl {
        self.database_migration_url
            .as_ref()
            .unwrap_or(&self.database_url)
    }

    /// The effective configuration as `(ENV_NAME, value, source)` rows, secrets redacted.
    pub fn describe(&self) -> Vec<(String, String, String)> {
        let secs = |d: Duration| d.as_secs().to_string();
        KEYS.iter()
            .map(|key| {
                let value = match *key {
                    "database_url" => self.database_url.redacted(),
                    "database_migration_url" => self.database_migration_url.as_ref().map_or_else(
                        || "(unset: DATABASE_URL is used)".to_owned(),
                        |u| u.redacted(),
                    ),
                    "database_pool_size" => self.database_pool_size.to_string(),
                    "database_pool_timeout_seconds" => secs(self.database_pool_timeout),
                    "database_pool_recycle_seconds" => secs(self.database_pool_recycle),
                    "migrate_on_start" => self.migrate_on_start.to_string(),
                    "port" => self.port.to_string(),
                    "cors_allowed_origins" => self.cors_allowed_origins.join(","),
                    "request_timeout_seconds" => secs(self.request_timeout),
                    "request_body_limit_bytes" => self.request_body_limit_bytes.to_string(),
                    "shutdown_grace_seconds" => secs(self.shutdown_grace),
                    "header_read_timeout_seconds" => secs(self.header_read_timeout),
                    "max_connections" => self.max_connections.to_string(),
                    "trusted_proxy_hops" => self.client_address.trusted_proxy_hops.to_string(),
                    "client_address_header" => self.client_address.header.as_str().to_owned(),
                    "password_hash_concurrency" => self.password_hash_concurrency.to_string(),
                    "password_hash_queue" => self.password_hash_queue.to_string(),
                    "log_level" => self.log_level.clone(),
                    "log_format" => format!("{:?}", self.log_format).to_ascii_lowercase(),
                    "fmp_api_key" => shown_secret(self.etl.fmp_api_key.as_ref()),
                    "polygon_api_key" => shown_secret(self.etl.polygon_api_key.as_ref()),
                    "fmp_base_url" => self.etl.fmp_base_url.to_string(),
                    "polygon_base_url" => self.etl.polygon_base_url.to_string(),
                    "etl_primary_provider" => self.etl.primary_provider.as_str().to_owned(),
                    "fmp_requests_per_minute" => self.etl.fmp_requests_per_minute.to_string(),
                    "polygon_requests_per_minute" => {
                        self.etl.polygon_requests_per_minute.to_string()
                    }
                    "etl_request_timeout_seconds" => secs(self.etl.request_timeout),
                    "etl_deadline_seconds" => secs(self.etl.deadline),
                    "etl_max_retries" => self.etl.max_retries.to_string(),
                    "etl_batch_size" => self.etl.batch_size.to_string(),
                    "etl_benchmark_symbols" => self.etl.benchmark_symbols.join(","),
                    "etl_lookback_days" => self.etl.lookback_days.to_string(),
                    "secret_key" => shown_secret(self.secret_key.as_ref()),
                    "secret_key_previous" => shown_secret(self.secret_key_previous.as_ref()),
                    "access_token_ttl_seconds" => secs(self.access_token_ttl),
                    _ => String::new(),
                };
                let source = self.sources.get(key).cloned().unwrap_or_default();
                (error::env_name(key), value, source)
            })
            .collect()
    }
}

/// How `sigmasight config` shows an API key: whether it is set, never what it is.
fn shown_secret(secret: Option<&Secret>) -> String {
    match secret {
        Some(_) => "(set, not shown)".to_owned(),
        None => "(unset)".to_owned(),
    }
}

/// How `daily_prices.symbol` (and every other ticker column) must be spelt, as the tables' CHECKs
/// and the OpenAPI document say it; [`is_symbol`] is the same rule, tested against this pattern.
pub const SYMBOL_PATTERN: &str = "^[A-Z0-9^][A-Z0-9.^-]{0,19}$";

/// Whether `symbol` is spelt as [`SYMBOL_PATTERN`] requires.
pub fn is_symbol(symbol: &str) -> bool {
    let bytes = symbol.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_uppercase() || first.is_ascii_digit() || *first == b'^')
                && rest.len() <= 19
                && rest.iter().all(|b| {
                    b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'.' | b'^' | b'-')
                })
        }
        None => false,
    }
}

/// Reads only `PORT`, for `sigmasight healthcheck`, which must work whatever else is set.
pub fn port() -> Result<u16, ConfigError> {
    let figment = figment()?;
    let port: u16 = figment
        .extract_inner("port")
        .map_err(|e| ConfigError::from_figment(e, &figment))?;
    Checker { figment: &figment }.range("port", port.into(), 1, 65_535)?;
    Ok(port)
}

/// Semantic checks that know where each value came from.
struct Checker<'a> {
    figment: &'a Figment,
}

impl Checker<'_> {
    fn invalid(&self, key: &str, got: String) -> ConfigError {
        ConfigError::Invalid {
            key: error::env_name(key),
            expected: expectation(key).to_owned(),
            got,
            source: error::source_of(self.figment, key),
        }
    }

    fn range(&self, key: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(self.invalid(key, value.to_string()))
        }
    }

    fn database_url(&self, key: &str, url: &str) -> Result<DatabaseUrl, ConfigError> {
        DatabaseUrl::parse(url)
            .map_err(|reason| self.invalid(key, format!("a value that is {reason}")))
    }

    fn etl(&self, raw: &Raw) -> Result<EtlConfig, ConfigError> {
        let rate = 1..=1_000_000;
        for (key, value) in [
            ("fmp_requests_per_minute", raw.fmp_requests_per_minute),
            (
                "polygon_requests_per_minute",
                raw.polygon_requests_per_minute,
            ),
        ] {
            self.range(key, value.into(), *rate.start(), *rate.end())?;
        }
        self.range(
            "etl_request_timeout_seconds",
            raw.etl_request_timeout_seconds,
            1,
            600,
        )?;
        self.range("etl_deadline_seconds", raw.etl_deadline_seconds, 1, 86_400)?;
        self.range("etl_max_retries", raw.etl_max_retries.into(), 0, 20)?;
        self.range("etl_batch_size", raw.etl_batch_size.into(), 1, 100_000)?;
        self.range("etl_lookback_days", raw.etl_lookback_days.into(), 1, 366)?;
        let key = |key: &str, value: &Option<String>| -> Result<Option<Secret>, ConfigError> {
            match value.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                // A key with spaces or quotes is a pasting accident; it would fail at the
                // provider with a confusing 401, so it is refused here without being quoted.
                Some(k) if k.bytes().all(|b| b.is_ascii_graphic() && b != b'"') => {
                    Ok(Some(Secret::new(k)))
                }
                Some(_) => Err(self.invalid(
                    key,
                    "a value with spaces or quotes (not shown because it is a secret)".to_owned(),
                )),
            }
        };
        let symbols: Vec<String> = raw
            .etl_benchmark_symbols
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if let Some(bad) = symbols.iter().find(|s| !is_symbol(s)) {
            return Err(self.invalid("etl_benchmark_symbols", format!("{bad:?}")));
        }
        Ok(EtlConfig {
            fmp_api_key: key("fmp_api_key", &raw.fmp_api_key)?,
            polygon_api_key: key("polygon_api_key", &raw.polygon_api_key)?,
            fmp_base_url: self.base_url("fmp_base_url", &raw.fmp_base_url)?,
            polygon_base_url: self.base_url("polygon_base_url", &raw.polygon_base_url)?,
            primary_provider: raw.etl_primary_provider,
            fmp_requests_per_minute: raw.fmp_requests_per_minute,
            polygon_requests_per_minute: raw.polygon_requests_per_minute,
            request_timeout: Duration::from_secs(raw.etl_request_timeout_seconds),
            deadline: Duration::from_secs(raw.etl_deadline_seconds),
            max_retries: raw.etl_max_retries,
            batch_size: usize::try_from(raw.etl_batch_size).unwrap_or(5000),
            benchmark_symbols: symbols,
            lookback_days: raw.etl_lookback_days,
        })
    }

    /// A token-signing key: unset or empty is `None`; a short one is refused without being
    /// quoted, because HS256 with fewer than 32 bytes of key is guessable offline from one token.
    fn signing_key(&self, key: &str, value: Option<&str>) -> Result<Option<Secret>, ConfigError> {
        match value {
            None | Some("") => Ok(None),
            Some(k) if k.len() >= MIN_SECRET_KEY_BYTES => Ok(Some(Secret::new(k))),
            Some(k) => Err(self.invalid(
                key,
                format!(
                    "a value of {} bytes (not shown because it is a secret)",
                    k.len()
                ),
            )),
        }
    }

    fn base_url(&self, key: &str, value: &str) -> Result<url::Url, ConfigError> {
        match url::Url::parse(value.trim()) {
            Ok(url) if is_plain_http(&url) => Ok(url),
            _ => Err(self.invalid(key, format!("{value:?}"))),
        }
    }

    fn origins(&self, origins: Origins) -> Result<Vec<String>, ConfigError> {
        let list: Vec<String> = match origins {
            Origins::List(list) => list,
            Origins::Text(text) => text.split(',').map(str::to_owned).collect(),
        };
        let list: Vec<String> = list
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        match list.iter().find(|o| !is_origin(o)) {
            Some(bad) => Err(self.invalid("cors_allowed_origins", format!("{bad:?}"))),
            None => Ok(list),
        }
    }
}

/// An http(s) URL with a host, and no credentials or query.
fn is_plain_http(url: &url::Url) -> bool {
    matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.query().is_none()
        && url.username().is_empty()
}

/// `scheme://host[:port]` and nothing more: what a browser sends in `Origin`.
fn is_origin(origin: &str) -> bool {
    url::Url::parse(origin).is_ok_and(|url| {
        is_plain_http(&url) && url.path() == "/" && origin.matches('/').count() == 2
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut figment = defaults();
        for (k, v) in pairs {
            figment = figment.merge((*k, *v));
        }
        Config::from_figment(&figment)
    }

    #[test]
    fn origins_are_split_trimmed_and_validated() {
        let config = load(&[
            ("database_url", "postgres://u@h/db"),
            (
                "cors_allowed_origins",
                " https://a.example.com/ , http://localhost:3000",
            ),
        ])
        .unwrap();
        assert_eq!(
            config.cors_allowed_origins,
            ["https://a.example.com", "http://localhost:3000"]
        );
        let err = load(&[
            ("database_url", "postgres://u@h/db"),
            ("cors_allowed_origins", "https://a.example.com/app"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("CORS_ALLOWED_ORIGINS: expected"),
            "{err}"
        );
    }

    #[test]
    fn port_zero_is_rejected_with_the_key_named() {
        let figment = defaults()
            .merge(("database_url", "postgres://u@h/db"))
            .merge(("port", 0));
        let err = Config::from_figment(&figment).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("PORT: expected an integer 1-65535, got 0"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_log_filter_is_rejected() {
        let err = load(&[
            ("database_url", "postgres://u@h/db"),
            ("log_level", "info,=["),
        ])
        .unwrap_err();
        assert!(err.to_string().starts_with("LOG_LEVEL: expected"), "{err}");
    }

    #[test]
    fn a_secret_value_is_never_quoted_in_an_error() {
        let err = load(&[("database_url", "mysql://root:topsecret@h/db")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("DATABASE_URL: expected a postgres:// URL"),
            "{err}"
        );
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }

    #[test]
    fn etl_settings_have_defaults_and_keys_are_never_shown() {
        let config = load(&[
            ("database_url", "postgres://u@h/db"),
            ("fmp_api_key", "fmp-key-never-shown"),
        ])
        .unwrap();
        assert_eq!(config.etl.primary_provider, Provider::Fmp);
        assert_eq!(config.etl.fmp_requests_per_minute, 300);
        assert_eq!(config.etl.polygon_requests_per_minute, 5);
        assert_eq!(config.etl.benchmark_symbols, ["SPY"]);
        assert_eq!(config.etl.lookback_days, 30);
        assert!(config.etl.polygon_api_key.is_none());
        let text = format!("{:?} {:?}", config, config.describe());
        assert!(!text.contains("fmp-key-never-shown"), "{text}");
        assert!(text.contains("(set, not shown)"), "{text}");
    }

    #[test]
    fn a_bad_benchmark_symbol_or_base_url_is_named() {
        let err = load(&[
            ("database_url", "postgres://u@h/db"),
            ("etl_benchmark_symbols", "SPY,spy"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("ETL_BENCHMARK_SYMBOLS: expected"),
            "{err}"
        );
        let err = load(&[
            ("database_url", "postgres://u@h/db"),
            ("polygon_base_url", "ftp://x"),
        ])
        .unwrap_err();
        assert!(
            err.to_string().starts_with("POLYGON_BASE_URL: expected"),
            "{err}"
        );
    }

    #[test]
    fn a_look_back_window_outside_a_day_to_a_year_is_named() {
        for days in ["0", "367"] {
            let err = load(&[
                ("database_url", "postgres://u@h/db"),
                ("etl_lookback_days", days),
            ])
            .unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("ETL_LOOKBACK_DAYS: expected a number of calendar days, 1-366"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_malformed_api_key_is_refused_without_being_quoted() {
        let err = load(&[
            ("database_url", "postgres://u@h/db"),
            ("polygon_api_key", "abc def-secret"),
        ])
        .unwrap_err();
        assert!(err.to_string().starts_with("POLYGON_API_KEY"), "{err}");
        assert!(!err.to_string().contains("def-secret"), "{err}");
    }

    #[test]
    fn symbols_follow_the_table_rule() {
        for good in ["SPY", "BRK.B", "BF-B", "^GSPC", "A"] {
            assert!(is_symbol(good), "{good}");
        }
        for bad in ["", "spy", ".A", "A B", "ABCDEFGHIJKLMNOPQRSTU"] {
            assert!(!is_symbol(bad), "{bad}");
        }
    }

    #[test]
    fn a_short_secret_key_is_refused_without_being_quoted_and_an_absent_one_is_none() {
        let err = load(&[
            ("database_url", "postgres://u@h/db"),
            ("secret_key", "too-short-secret"),
        ])
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "SECRET_KEY: expected a secret of at least 32 bytes, got a value of 16 bytes"
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("too-short-secret"), "{err}");
        let config = load(&[("database_url", "postgres://u@h/db")]).unwrap();
        assert!(config.secret_key.is_none());
        assert_eq!(config.access_token_ttl, Duration::from_secs(3600));
    }

    #[test]
    fn the_edge_settings_have_safe_defaults() {
        let config = load(&[("database_url", "postgres://u@h/db")]).unwrap();
        assert_eq!(config.client_address.trusted_proxy_hops, 0);
        assert_eq!(
            config.client_address.header,
            ClientAddressHeader::XForwardedFor
        );
        assert_eq!(config.header_read_timeout, Duration::from_secs(10));
        assert_eq!(config.max_connections, 4096);
        assert_eq!(config.password_hash_queue, 64);
        assert_eq!(
            config.password_hash_concurrency,
            std::thread::available_parallelism().map_or(1, usize::from)
        );
        let figment = defaults()
            .merge(("database_url", "postgres://u@h/db"))
            .merge(("trusted_proxy_hops", 1))
            .merge(("client_address_header", "x-real-ip"))
            .merge(("password_hash_concurrency", 3));
        let config = Config::from_figment(&figment).unwrap();
        assert_eq!(config.client_address.header, ClientAddressHeader::XRealIp);
        assert_eq!(config.password_hash_concurrency, 3);
    }

    #[test]
    fn x_real_ip_needs_exactly_one_trusted_proxy() {
        for hops in [0, 2] {
            let figment = defaults()
                .merge(("database_url", "postgres://u@h/db"))
                .merge(("trusted_proxy_hops", hops))
                .merge(("client_address_header", "x-real-ip"));
            let err = Config::from_figment(&figment).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("CLIENT_ADDRESS_HEADER: expected"),
                "{err}"
            );
        }
        let err = load(&[
            ("database_url", "postgres://u@h/db"),
            ("client_address_header", "forwarded"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("CLIENT_ADDRESS_HEADER: expected"),
            "{err}"
        );
        let figment = defaults()
            .merge(("database_url", "postgres://u@h/db"))
            .merge(("password_hash_concurrency", 0));
        let err = Config::from_figment(&figment).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("PASSWORD_HASH_CONCURRENCY: expected"),
            "{err}"
        );
    }

    #[test]
    fn describe_redacts_every_secret() {
        let config = load(&[
            ("database_url", "postgres://app:pw1secret@h/db"),
            ("database_migration_url", "postgres://owner:pw2secret@h/db"),
            ("secret_key", "pw3secret-pw3secret-pw3secret-pw3secret"),
        ])
        .unwrap();
        let text = format!("{:?}", config.describe());
        assert!(
            !text.contains("pw1secret")
                && !text.contains("pw2secret")
                && !text.contains("pw3secret"),
            "{text}"
        );
        assert_eq!(config.describe().len(), KEYS.len());
    }
}
