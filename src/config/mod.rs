//! Configuration: built-in defaults, then the optional TOML file named by `SIGMASIGHT_CONFIG`,
//! then the environment (the plain names Railway and compose set: `DATABASE_URL`, `PORT`, ...).
//!
//! Each key is declared once, in [`settings::SETTINGS`]; this module reads the sources by that
//! table into the typed [`Config`]. Every value is validated before any socket opens; a bad one is
//! reported as one sentence that names the key and where the value came from (see
//! [`ConfigError`]).

mod database_url;
mod error;
mod secret;
pub mod settings;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::Symbol;

pub use database_url::{redact, DatabaseUrl};
pub use error::ConfigError;
pub use secret::Secret;

use settings::{Kind, Setting, Unit, SETTINGS};

/// The environment variable naming an optional TOML configuration file.
pub const CONFIG_FILE_VAR: &str = "SIGMASIGHT_CONFIG";

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
    /// The port of the metrics listener (`/metrics`, on the same addresses); none when unset.
    pub metrics_port: Option<u16>,
    /// Origins a browser may call the API from.
    pub cors_allowed_origins: Vec<String>,
    /// A request still running after this gets a timeout error.
    pub request_timeout: Duration,
    /// Largest request body accepted.
    pub request_body_limit_bytes: usize,
    /// How long in-flight requests get to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// How long after SIGTERM the server keeps accepting and serving, readiness answering 503,
    /// before it drains.
    pub shutdown_drain: Duration,
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
    /// `sigmasight config`'s rows, recorded as the values were read.
    described: Vec<(String, String, String)>,
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

/// A list setting as a comma-separated string (the environment) or a list (TOML).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ListValue {
    List(Vec<String>),
    Text(String),
}

/// What each key takes, for error messages.
fn expectation(key: &str) -> String {
    settings::find(key).map_or_else(|| "a known key".to_owned(), |s| s.kind.expectation())
}

fn is_secret(key: &str) -> bool {
    settings::find(key).is_some_and(|s| s.secret)
}

/// The built-in defaults alone (tests merge their own values over them).
pub fn defaults() -> Figment {
    let values: Dict = SETTINGS
        .iter()
        .filter_map(|s| {
            let value = match s.default {
                settings::Default::Integer(n) => Value::from(n),
                settings::Default::Bool(b) => Value::from(b),
                settings::Default::Text(text) => Value::from(text),
                settings::Default::Unset(_) | settings::Default::Required => return None,
            };
            Some((s.key.to_owned(), value))
        })
        .collect();
    Figment::from(Serialized::defaults(values))
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
    let keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
    Ok(figment.merge(Env::raw().only(&keys)))
}

impl Config {
    /// Loads and validates the configuration from the standard sources.
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_figment(&figment()?)
    }

    /// Validates the configuration held by `figment` (tests build their own).
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        // Every entry of the table, by its constant (`PORT`, ...).
        use settings::*;

        // A file that does not parse, or a key the table does not declare, stops everything.
        let given: Dict = figment
            .extract()
            .map_err(|e| ConfigError::from_figment(e, figment))?;
        if let Some(key) = given.keys().find(|key| settings::find(key).is_none()) {
            return Err(ConfigError::UnknownKey {
                key: key.clone(),
                source: error::source_of(figment, key),
            });
        }
        let mut r = Reader::new(figment);

        let database_url = r.database_url(&DATABASE_URL)?;
        let database_url = r.required(&DATABASE_URL, database_url)?;
        let database_migration_url = r.database_url(&DATABASE_MIGRATION_URL)?;
        let database_pool_size = r.integer(&DATABASE_POOL_SIZE)?;
        let database_pool_timeout = r.seconds(&DATABASE_POOL_TIMEOUT_SECONDS)?;
        let database_pool_recycle = r.seconds(&DATABASE_POOL_RECYCLE_SECONDS)?;
        let migrate_on_start = r.bool(&MIGRATE_ON_START)?;
        let port = r.integer(&PORT)?;
        let metrics_port = r.optional_integer(&METRICS_PORT)?;
        let cors_allowed_origins = r.list(&CORS_ALLOWED_ORIGINS, |origin| {
            let origin = origin.trim_end_matches('/');
            is_origin(origin).then(|| origin.to_owned())
        })?;
        let request_timeout = r.seconds(&REQUEST_TIMEOUT_SECONDS)?;
        let request_body_limit_bytes = r.integer(&REQUEST_BODY_LIMIT_BYTES)?;
        let shutdown_grace = r.seconds(&SHUTDOWN_GRACE_SECONDS)?;
        let shutdown_drain = r.seconds(&SHUTDOWN_DRAIN_SECONDS)?;
        let header_read_timeout = r.seconds(&HEADER_READ_TIMEOUT_SECONDS)?;
        let max_connections = r.integer(&MAX_CONNECTIONS)?;
        let trusted_proxy_hops = r.integer(&TRUSTED_PROXY_HOPS)?;
        let header = r.choice(&CLIENT_ADDRESS_HEADER)?;
        // X-Real-IP is one address written by the nearest proxy: it means one trusted hop.
        if header == ClientAddressHeader::XRealIp && trusted_proxy_hops != 1 {
            return Err(r.invalid(
                &CLIENT_ADDRESS_HEADER,
                format!("x-real-ip with TRUSTED_PROXY_HOPS={trusted_proxy_hops}"),
            ));
        }
        let password_hash_concurrency = match r.optional_integer(&PASSWORD_HASH_CONCURRENCY)? {
            Some(n) => n,
            None => {
                let n = std::thread::available_parallelism().map_or(1, usize::from);
                r.show(&PASSWORD_HASH_CONCURRENCY, n.to_string());
                n
            }
        };
        let password_hash_queue = r.integer(&PASSWORD_HASH_QUEUE)?;
        let log_level = r.text(&LOG_LEVEL, |filter| {
            tracing_subscriber::EnvFilter::try_new(filter).is_ok()
        })?;
        let log_format = r.choice(&LOG_FORMAT)?;
        let etl = EtlConfig {
            fmp_api_key: r.api_key(&FMP_API_KEY)?,
            polygon_api_key: r.api_key(&POLYGON_API_KEY)?,
            fmp_base_url: r.http_url(&FMP_BASE_URL)?,
            polygon_base_url: r.http_url(&POLYGON_BASE_URL)?,
            primary_provider: r.choice(&ETL_PRIMARY_PROVIDER)?,
            fmp_requests_per_minute: r.integer(&FMP_REQUESTS_PER_MINUTE)?,
            polygon_requests_per_minute: r.integer(&POLYGON_REQUESTS_PER_MINUTE)?,
            request_timeout: r.seconds(&ETL_REQUEST_TIMEOUT_SECONDS)?,
            deadline: r.seconds(&ETL_DEADLINE_SECONDS)?,
            max_retries: r.integer(&ETL_MAX_RETRIES)?,
            batch_size: r.integer(&ETL_BATCH_SIZE)?,
            benchmark_symbols: r.list(&ETL_BENCHMARK_SYMBOLS, |symbol| {
                Symbol::parse(symbol).ok().map(String::from)
            })?,
            lookback_days: r.integer(&ETL_LOOKBACK_DAYS)?,
        };
        let secret_key = r.signing_key(&SECRET_KEY)?;
        let secret_key_previous = r.signing_key(&SECRET_KEY_PREVIOUS)?;
        let access_token_ttl = r.seconds(&ACCESS_TOKEN_TTL_SECONDS)?;

        Ok(Self {
            database_url,
            database_migration_url,
            database_pool_size,
            database_pool_timeout,
            database_pool_recycle,
            migrate_on_start,
            port,
            metrics_port,
            cors_allowed_origins,
            request_timeout,
            request_body_limit_bytes,
            shutdown_grace,
            shutdown_drain,
            header_read_timeout,
            max_connections,
            client_address: ClientAddressRule {
                trusted_proxy_hops,
                header,
            },
            password_hash_concurrency,
            password_hash_queue,
            log_level,
            log_format,
            etl,
            secret_key,
            secret_key_previous,
            access_token_ttl,
            described: r.finish()?,
        })
    }

    /// The URL migrations run with: the schema owner's if configured, else the service's.
    pub fn migration_url(&self) -> &DatabaseUrl {
        self.database_migration_url
            .as_ref()
            .unwrap_or(&self.database_url)
    }

    /// The effective configuration as `(ENV_NAME, value, source)` rows, in the table's order,
    /// secrets redacted.
    pub fn describe(&self) -> Vec<(String, String, String)> {
        self.described.clone()
    }
}

/// How `sigmasight config` shows a secret that is set (a database URL shows itself redacted).
const SET_NOT_SHOWN: &str = "(set, not shown)";

/// Reads one key at a time by its entry in the table: the value's type, bounds and expectation
/// come from the entry, and what `sigmasight config` shows for it is recorded as it is read.
struct Reader<'a> {
    figment: &'a Figment,
    /// Each key read so far, with what `sigmasight config` shows for it (`None`: it is unset).
    shown: BTreeMap<&'static str, Option<String>>,
}

impl<'a> Reader<'a> {
    fn new(figment: &'a Figment) -> Self {
        Self {
            figment,
            shown: BTreeMap::new(),
        }
    }

    fn invalid(&self, s: &Setting, got: String) -> ConfigError {
        ConfigError::Invalid {
            key: s.env_name(),
            expected: s.kind.expectation(),
            got,
            source: error::source_of(self.figment, s.key),
        }
    }

    /// A reader that does not match the entry's kind: a bug, which every test that loads a
    /// configuration finds.
    fn misread(s: &Setting, as_what: &str) -> ConfigError {
        ConfigError::Table {
            key: s.env_name(),
            reason: format!("read as {as_what}, which its entry does not declare"),
        }
    }

    /// The value of `s` as a `T`; `None` if no source sets it.
    fn value<T: DeserializeOwned>(&mut self, s: &Setting) -> Result<Option<T>, ConfigError> {
        self.shown.insert(s.key, None);
        if !self.figment.contains(s.key) {
            return match s.default {
                settings::Default::Required => Err(ConfigError::Missing { key: s.env_name() }),
                _ => Ok(None),
            };
        }
        self.figment
            .extract_inner(s.key)
            .map(Some)
            .map_err(|e| ConfigError::from_figment(e, self.figment))
    }

    /// `value`, for a key that has a default or is required.
    fn required<T>(&self, s: &Setting, value: Option<T>) -> Result<T, ConfigError> {
        value.ok_or_else(|| ConfigError::Missing { key: s.env_name() })
    }

    /// Records what `sigmasight config` shows for `s`; a secret other than a (redacted)
    /// database URL only says that it is set.
    fn show(&mut self, s: &Setting, value: String) {
        let value = if s.secret && s.kind != Kind::DatabaseUrl {
            SET_NOT_SHOWN.to_owned()
        } else {
            value
        };
        self.shown.insert(s.key, Some(value));
    }

    fn optional_integer<T: TryFrom<u64>>(&mut self, s: &Setting) -> Result<Option<T>, ConfigError> {
        let Kind::Integer { min, max, .. } = s.kind else {
            return Err(Self::misread(s, "an integer"));
        };
        let Some(n) = self.value::<u64>(s)? else {
            return Ok(None);
        };
        let value = (min..=max)
            .contains(&n)
            .then(|| T::try_from(n).ok())
            .flatten()
            .ok_or_else(|| self.invalid(s, n.to_string()))?;
        self.show(s, n.to_string());
        Ok(Some(value))
    }

    fn integer<T: TryFrom<u64>>(&mut self, s: &Setting) -> Result<T, ConfigError> {
        let value = self.optional_integer(s)?;
        self.required(s, value)
    }

    fn seconds(&mut self, s: &Setting) -> Result<Duration, ConfigError> {
        match s.kind {
            Kind::Integer {
                unit: Unit::Seconds,
                ..
            } => Ok(Duration::from_secs(self.integer(s)?)),
            _ => Err(Self::misread(s, "seconds")),
        }
    }

    fn bool(&mut self, s: &Setting) -> Result<bool, ConfigError> {
        if s.kind != Kind::Bool {
            return Err(Self::misread(s, "a boolean"));
        }
        let value: Option<bool> = self.value(s)?;
        let value = self.required(s, value)?;
        self.show(s, value.to_string());
        Ok(value)
    }

    /// One of the entry's values, as the enum `T` whose serde names they are.
    fn choice<T: DeserializeOwned>(&mut self, s: &Setting) -> Result<T, ConfigError> {
        let Kind::Choice { values, .. } = s.kind else {
            return Err(Self::misread(s, "a choice"));
        };
        let text: Option<String> = self.value(s)?;
        let text = self.required(s, text)?;
        if !values.contains(&text.as_str()) {
            return Err(self.invalid(s, format!("{text:?}")));
        }
        let value = self
            .figment
            .extract_inner(s.key)
            .map_err(|e| ConfigError::from_figment(e, self.figment))?;
        self.show(s, text);
        Ok(value)
    }

    /// The items, trimmed, empty ones dropped, each passed through `item` (`None`: refused).
    fn list(
        &mut self,
        s: &Setting,
        item: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>, ConfigError> {
        if !matches!(s.kind, Kind::List { .. }) {
            return Err(Self::misread(s, "a list"));
        }
        let value = self.value(s)?;
        let items = match self.required(s, value)? {
            ListValue::List(items) => items,
            ListValue::Text(text) => text.split(',').map(str::to_owned).collect(),
        };
        let mut list = Vec::new();
        for raw in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            match item(raw) {
                Some(accepted) => list.push(accepted),
                None => return Err(self.invalid(s, format!("{raw:?}"))),
            }
        }
        self.show(s, list.join(","));
        Ok(list)
    }

    fn text(&mut self, s: &Setting, valid: impl Fn(&str) -> bool) -> Result<String, ConfigError> {
        if !matches!(s.kind, Kind::Text { .. }) {
            return Err(Self::misread(s, "text"));
        }
        let value: Option<String> = self.value(s)?;
        let value = self.required(s, value)?;
        if !valid(&value) {
            return Err(self.invalid(s, format!("{value:?}")));
        }
        self.show(s, value.clone());
        Ok(value)
    }

    fn http_url(&mut self, s: &Setting) -> Result<url::Url, ConfigError> {
        if s.kind != Kind::HttpUrl {
            return Err(Self::misread(s, "an http URL"));
        }
        let value: Option<String> = self.value(s)?;
        let value = self.required(s, value)?;
        match url::Url::parse(value.trim()) {
            Ok(url) if is_plain_http(&url) => {
                self.show(s, url.to_string());
                Ok(url)
            }
            _ => Err(self.invalid(s, format!("{value:?}"))),
        }
    }

    /// A database URL; for an optional one, empty is unset (compose passes `KEY=` on as "").
    fn database_url(&mut self, s: &Setting) -> Result<Option<DatabaseUrl>, ConfigError> {
        if s.kind != Kind::DatabaseUrl {
            return Err(Self::misread(s, "a database URL"));
        }
        let Some(text) = self.value::<String>(s)? else {
            return Ok(None);
        };
        if text.is_empty() && matches!(s.default, settings::Default::Unset(_)) {
            return Ok(None);
        }
        let url = DatabaseUrl::parse(&text)
            .map_err(|reason| self.invalid(s, format!("a value that is {reason}")))?;
        self.show(s, url.redacted());
        Ok(Some(url))
    }

    /// A provider's key: unset, empty or blank is `None`.
    fn api_key(&mut self, s: &Setting) -> Result<Option<Secret>, ConfigError> {
        if s.kind != Kind::ApiKey {
            return Err(Self::misread(s, "an API key"));
        }
        let Some(text) = self.value::<String>(s)? else {
            return Ok(None);
        };
        match text.trim() {
            "" => Ok(None),
            // A key with spaces or quotes is a pasting accident; it would fail at the provider
            // with a confusing 401, so it is refused here without being quoted.
            key if key.bytes().all(|b| b.is_ascii_graphic() && b != b'"') => {
                self.show(s, SET_NOT_SHOWN.to_owned());
                Ok(Some(Secret::new(key)))
            }
            _ => Err(self.invalid(
                s,
                "a value with spaces or quotes (not shown because it is a secret)".to_owned(),
            )),
        }
    }

    /// A token-signing key: unset or empty is `None`; a short one is refused without being
    /// quoted, because HS256 with fewer than 32 bytes of key is guessable offline from one token.
    fn signing_key(&mut self, s: &Setting) -> Result<Option<Secret>, ConfigError> {
        if s.kind != Kind::SigningKey {
            return Err(Self::misread(s, "a signing key"));
        }
        match self.value::<String>(s)?.as_deref() {
            None | Some("") => Ok(None),
            Some(key) if key.len() >= MIN_SECRET_KEY_BYTES => {
                self.show(s, SET_NOT_SHOWN.to_owned());
                Ok(Some(Secret::new(key)))
            }
            Some(key) => Err(self.invalid(
                s,
                format!(
                    "a value of {} bytes (not shown because it is a secret)",
                    key.len()
                ),
            )),
        }
    }

    /// The rows of `sigmasight config`, in the table's order; a key nobody read is a bug.
    fn finish(self) -> Result<Vec<(String, String, String)>, ConfigError> {
        SETTINGS
            .iter()
            .map(|s| {
                let value = match (self.shown.get(s.key), s.default) {
                    (Some(Some(value)), _) => value.clone(),
                    (Some(None), settings::Default::Unset(then)) if !then.is_empty() => {
                        format!("(unset: {then})")
                    }
                    (Some(None), _) => "(unset)".to_owned(),
                    (None, _) => {
                        return Err(ConfigError::Table {
                            key: s.env_name(),
                            reason: "declared, but never read by Config::from_figment".to_owned(),
                        })
                    }
                };
                Ok((s.env_name(), value, error::source_of(self.figment, s.key)))
            })
            .collect()
    }
}

/// Reads only `PORT`, for `sigmasight healthcheck`, which must work whatever else is set.
pub fn port() -> Result<u16, ConfigError> {
    let figment = figment()?;
    Reader::new(&figment).integer(&settings::PORT)
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
        assert_eq!(config.describe().len(), SETTINGS.len());
    }

    #[test]
    fn every_entry_of_the_table_is_complete_and_consistent() {
        use settings::Default;

        let mut keys = std::collections::BTreeSet::new();
        for (constant, key) in settings::CONSTANT_NAMES {
            assert_eq!(
                *constant,
                key.to_ascii_uppercase(),
                "{key}: constant named otherwise"
            );
        }
        assert_eq!(settings::CONSTANT_NAMES.len(), SETTINGS.len());
        for s in SETTINGS {
            let key = s.key;
            assert!(keys.insert(key), "{key}: declared twice");
            assert!(
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{key}: keys are lower-case words joined by _"
            );
            assert!(
                !s.help.trim().is_empty() && !s.help.contains(['|', '\n']),
                "{key}: help must be one line of a Markdown table cell"
            );
            let credential = matches!(s.kind, Kind::DatabaseUrl | Kind::ApiKey | Kind::SigningKey);
            assert_eq!(
                s.secret, credential,
                "{key}: secret exactly when it holds a credential"
            );
            match (s.kind, s.default) {
                (Kind::Integer { min, max, .. }, Default::Integer(n)) => {
                    assert!(
                        min <= n && n <= max,
                        "{key}: default {n} outside {min}-{max}"
                    );
                }
                (Kind::Integer { min, max, .. }, Default::Unset(_)) => {
                    assert!(min <= max, "{key}: bounds {min}-{max}");
                }
                (Kind::Bool, Default::Bool(_)) => {}
                (Kind::Choice { values, .. }, Default::Text(text)) => {
                    assert!(
                        values.contains(&text),
                        "{key}: default {text} is not a choice"
                    );
                }
                (Kind::List { .. } | Kind::Text { .. } | Kind::HttpUrl, Default::Text(_)) => {}
                // No built-in credential: a default secret would be the same on every install.
                (Kind::DatabaseUrl, Default::Required | Default::Unset(_)) => {}
                (Kind::ApiKey | Kind::SigningKey, Default::Unset(_)) => {}
                (kind, default) => panic!("{key}: a {kind:?} cannot default to {default:?}"),
            }
        }
    }

    #[test]
    fn every_setting_is_read_and_described_in_the_table_order() {
        let config = load(&[("database_url", "postgres://u@h/db")]).unwrap();
        let described = config.describe();
        let names: Vec<String> = described.iter().map(|(key, _, _)| key.clone()).collect();
        let declared: Vec<String> = SETTINGS.iter().map(Setting::env_name).collect();
        assert_eq!(names, declared);
        for (key, value, source) in &described {
            assert!(!value.is_empty(), "{key} shows nothing");
            assert!(
                source == "default" || key == "DATABASE_URL",
                "{key}: {source}"
            );
        }
        let shown = |key: &str| {
            described
                .iter()
                .find(|(k, _, _)| k == key)
                .map(|(_, value, _)| value.clone())
        };
        assert_eq!(shown("PORT").as_deref(), Some("8000"));
        assert_eq!(
            shown("DATABASE_MIGRATION_URL").as_deref(),
            Some("(unset: DATABASE_URL is used)")
        );
        assert_eq!(shown("SECRET_KEY_PREVIOUS").as_deref(), Some("(unset)"));
    }

    #[test]
    fn every_integer_is_checked_against_the_bounds_of_its_entry() {
        let with = |key: &str, n: u64| {
            Config::from_figment(
                &defaults()
                    .merge(("database_url", "postgres://u@h/db"))
                    .merge((key, n)),
            )
        };
        for s in SETTINGS {
            let Kind::Integer { min, max, .. } = s.kind else {
                continue;
            };
            for n in [min, max] {
                let config = with(s.key, n);
                assert!(config.is_ok(), "{}={n}: {:?}", s.key, config.err());
            }
            for n in [min.checked_sub(1), max.checked_add(1)]
                .into_iter()
                .flatten()
            {
                let err = with(s.key, n).unwrap_err();
                assert_eq!(
                    err.to_string(),
                    format!(
                        "{}: expected {}, got {n} (default)",
                        s.env_name(),
                        s.kind.expectation()
                    )
                );
            }
        }
    }

    #[test]
    fn every_choice_of_the_table_loads_and_nothing_else_does() {
        for s in SETTINGS {
            let Kind::Choice { values, .. } = s.kind else {
                continue;
            };
            for value in values {
                // x-real-ip needs one trusted hop; one hop is fine for every other choice.
                let figment = defaults()
                    .merge(("database_url", "postgres://u@h/db"))
                    .merge(("trusted_proxy_hops", 1))
                    .merge((s.key, *value));
                let config = Config::from_figment(&figment).unwrap();
                assert!(
                    config.describe().contains(&(
                        s.env_name(),
                        (*value).to_owned(),
                        "default".to_owned()
                    )),
                    "{}={value}",
                    s.key
                );
            }
            let err = load(&[("database_url", "postgres://u@h/db"), (s.key, "other")]).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!(
                    "{}: expected {}, got \"other\"",
                    s.env_name(),
                    s.kind.expectation()
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn a_setting_read_as_a_kind_its_entry_does_not_declare_is_an_error_at_once() {
        let figment = defaults();
        let err = Reader::new(&figment).bool(&settings::PORT).unwrap_err();
        assert!(matches!(err, ConfigError::Table { .. }), "{err}");
        let err = Reader::new(&figment)
            .seconds(&settings::DATABASE_POOL_SIZE)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("DATABASE_POOL_SIZE: read as seconds"),
            "{err}"
        );
    }

    #[test]
    fn the_expectations_read_as_the_error_messages_always_said() {
        let expected = |s: &Setting| s.kind.expectation();
        assert_eq!(expected(&settings::PORT), "an integer 1-65535");
        assert_eq!(
            expected(&settings::DATABASE_POOL_RECYCLE_SECONDS),
            "a whole number of seconds, 1-86400"
        );
        assert_eq!(
            expected(&settings::REQUEST_BODY_LIMIT_BYTES),
            "a number of bytes, 1-1073741824"
        );
        assert_eq!(expected(&settings::LOG_FORMAT), "json or pretty");
        assert_eq!(expected(&settings::MIGRATE_ON_START), "true or false");
        assert_eq!(
            expected(&settings::SECRET_KEY),
            "a secret of at least 32 bytes"
        );
    }

    /// The lines scripts/lib/settings.sh (for the deployment checks) and .railway/check.ts read
    /// the keys from, and those scripts/lib/settings.sh reads the secret keys and the defaults the
    /// checks compare the manifests with (shutdown grace, ETL deadline) from, parsed as they do.
    #[test]
    fn the_deployment_checks_find_every_key_in_the_table_source() {
        let source: Vec<&str> = include_str!("settings.rs").lines().collect();
        let key_of = |line: &str| {
            line.trim_start()
                .strip_prefix("key: \"")
                .and_then(|rest| rest.strip_suffix("\","))
                .filter(|key| {
                    key.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                })
                .map(str::to_owned)
        };
        let parsed: Vec<String> = source.iter().filter_map(|line| key_of(line)).collect();
        let declared: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        assert_eq!(parsed, declared);
        for (n, line) in source.iter().enumerate() {
            if let Some(key) = key_of(line) {
                let next = source.get(n + 1).map_or("", |l| l.trim_start());
                assert!(
                    next.starts_with("default: "),
                    "{key}: `default:` must follow `key:`"
                );
            }
        }
        let mut key = None;
        let mut secret = Vec::new();
        for line in &source {
            key = key_of(line).or(key);
            if line.trim() == "secret: true," {
                secret.extend(key.clone());
            }
        }
        let declared_secret: Vec<&str> = SETTINGS
            .iter()
            .filter(|s| s.secret)
            .map(|s| s.key)
            .collect();
        assert_eq!(secret, declared_secret);
        for setting in [
            settings::SHUTDOWN_GRACE_SECONDS,
            settings::ETL_DEADLINE_SECONDS,
        ] {
            let default = source
                .iter()
                .position(|line| line.trim() == format!("key: \"{}\",", setting.key))
                .and_then(|n| source.get(n + 1))
                .and_then(|line| line.trim().strip_prefix("default: Integer("))
                .and_then(|rest| rest.strip_suffix("),"))
                .and_then(|n| n.parse::<u64>().ok());
            assert_eq!(
                default.map(settings::Default::Integer),
                Some(setting.default),
                "{}",
                setting.key
            );
        }
    }

    /// README.md's and docs/etl.md's configuration tables, between their markers, are what
    /// [`settings::markdown_table`] renders. `UPDATE_DOCS=1` rewrites them instead.
    #[test]
    fn the_configuration_tables_of_the_docs_are_generated_from_the_settings() {
        const BEGIN: &str =
            "<!-- settings table: begin (generated from src/config/settings.rs) -->\n";
        const END: &str = "<!-- settings table: end -->\n";
        let update = std::env::var_os("UPDATE_DOCS").is_some();
        for (file, group) in [
            ("README.md", None),
            ("docs/etl.md", Some(settings::Group::Etl)),
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            let start = text.find(BEGIN).map(|i| i + BEGIN.len());
            let end = text.find(END);
            let (Some(start), Some(end)) = (start, end) else {
                panic!("{file}: no lines {BEGIN:?} ... {END:?} around the settings table");
            };
            let current = &text[start..end];
            let generated = settings::markdown_table(group);
            if update {
                let text = format!("{}{generated}{}", &text[..start], &text[end..]);
                std::fs::write(&path, text).unwrap();
                continue;
            }
            let diff: Vec<String> = diff_lines(current, &generated);
            assert!(
                diff.is_empty(),
                "{file}'s settings table differs from src/config/settings.rs \
                 (- the file, + the table):\n{}\nregenerate it with: \
                 UPDATE_DOCS=1 cargo test --lib configuration_tables",
                diff.join("\n")
            );
        }
    }

    /// The lines of `old` missing from `new` (`-`) and of `new` missing from `old` (`+`).
    fn diff_lines(old: &str, new: &str) -> Vec<String> {
        let gone = old.lines().filter(|l| !new.lines().any(|n| n == *l));
        let added = new.lines().filter(|l| !old.lines().any(|o| o == *l));
        gone.map(|l| format!("- {l}"))
            .chain(added.map(|l| format!("+ {l}")))
            .collect()
    }
}
