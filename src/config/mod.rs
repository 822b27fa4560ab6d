//! Configuration: built-in defaults, then the optional TOML file named by `SIGMASIGHT_CONFIG`,
//! then the environment (the plain names Railway and compose set: `DATABASE_URL`, `PORT`, ...).
//!
//! Every value is validated before any socket opens; a bad one is reported as one sentence that
//! names the key and where the value came from (see [`ConfigError`]).

mod database_url;
mod error;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use database_url::{redact, DatabaseUrl};
pub use error::ConfigError;

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
    "log_level",
    "log_format",
];

/// Keys whose values are secrets (or contain one): never printed, never quoted in errors.
const SECRET_KEYS: &[&str] = &["database_url", "database_migration_url"];

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
    /// A `tracing` filter: a level or directives such as `info,sqlx=warn`.
    pub log_level: String,
    /// Log line format.
    pub log_format: LogFormat,
    sources: BTreeMap<&'static str, String>,
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
    log_level: String,
    log_format: LogFormat,
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
            log_level: "info".to_owned(),
            log_format: LogFormat::Json,
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
            log_level: raw.log_level,
            log_format: raw.log_format,
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
                    "log_level" => self.log_level.clone(),
                    "log_format" => format!("{:?}", self.log_format).to_ascii_lowercase(),
                    _ => String::new(),
                };
                let source = self.sources.get(key).cloned().unwrap_or_default();
                (error::env_name(key), value, source)
            })
            .collect()
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

/// `scheme://host[:port]` and nothing more: what a browser sends in `Origin`.
fn is_origin(origin: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.username().is_empty()
        && origin.matches('/').count() == 2
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
    fn describe_redacts_every_secret() {
        let config = load(&[
            ("database_url", "postgres://app:pw1secret@h/db"),
            ("database_migration_url", "postgres://owner:pw2secret@h/db"),
        ])
        .unwrap();
        let text = format!("{:?}", config.describe());
        assert!(
            !text.contains("pw1secret") && !text.contains("pw2secret"),
            "{text}"
        );
        assert_eq!(config.describe().len(), KEYS.len());
    }
}
