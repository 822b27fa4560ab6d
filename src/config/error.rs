//! Configuration errors, each one sentence naming the key and where its value came from.

use std::fmt;

use figment::error::{Actual, Kind};
use figment::{Figment, Metadata, Source};

/// Why the configuration could not be loaded. `Display` gives the sentence printed before the
/// program exits with code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A required key has no value anywhere.
    Missing { key: String },
    /// A value is present but unusable.
    Invalid {
        key: String,
        expected: String,
        got: String,
        source: String,
    },
    /// The TOML file holds a key this program does not know.
    UnknownKey { key: String, source: String },
    /// The file named by `SIGMASIGHT_CONFIG` cannot be read or parsed.
    File { path: String, reason: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { key } => write!(
                f,
                "{key}: required, but set neither in the environment nor in the file named by {}",
                super::CONFIG_FILE_VAR
            ),
            Self::Invalid {
                key,
                expected,
                got,
                source,
            } => write!(f, "{key}: expected {expected}, got {got} ({source})"),
            Self::UnknownKey { key, source } => write!(
                f,
                "{key}: unknown key ({source}); the known keys are listed by `sigmasight config`"
            ),
            Self::File { path, reason } => write!(
                f,
                "{}: cannot read the configuration file \"{path}\": {reason}",
                super::CONFIG_FILE_VAR
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// Turns figment's first error into one sentence about one key.
    pub(super) fn from_figment(err: figment::Error, figment: &Figment) -> Self {
        let key = err.path.first().cloned().unwrap_or_default();
        let source = err
            .metadata
            .as_ref()
            .map(source_name)
            .unwrap_or_else(|| source_of(figment, &key));
        match err.kind {
            Kind::MissingField(field) => Self::Missing {
                key: env_name(&field),
            },
            Kind::UnknownField(field, _) => Self::UnknownKey { key: field, source },
            Kind::InvalidType(actual, _) | Kind::InvalidValue(actual, _) => Self::Invalid {
                expected: super::expectation(&key).to_owned(),
                got: shown(&key, &actual),
                key: env_name(&key),
                source,
            },
            Kind::UnknownVariant(got, _) => Self::Invalid {
                expected: super::expectation(&key).to_owned(),
                got: format!("{got:?}"),
                key: env_name(&key),
                source,
            },
            Kind::Message(message) if key.is_empty() => match figment_file(figment) {
                Some(path) => Self::File {
                    path,
                    reason: message,
                },
                None => Self::Invalid {
                    key: "configuration".to_owned(),
                    expected: "a valid configuration".to_owned(),
                    got: message,
                    source,
                },
            },
            other => Self::Invalid {
                expected: super::expectation(&key).to_owned(),
                got: format!("an unusable value ({other})"),
                key: env_name(&key),
                source,
            },
        }
    }
}

/// The environment variable name of a key (`port` → `PORT`).
pub(super) fn env_name(key: &str) -> String {
    key.to_ascii_uppercase()
}

/// Where the value of `key` came from: `environment`, `file <path>` or `default`.
pub(super) fn source_of(figment: &Figment, key: &str) -> String {
    figment
        .find_metadata(key)
        .map(source_name)
        .unwrap_or_else(|| "default".to_owned())
}

fn source_name(metadata: &Metadata) -> String {
    match &metadata.source {
        Some(Source::File(path)) => format!("file {}", path.display()),
        _ if metadata.name.contains("environment") => "environment".to_owned(),
        _ => "default".to_owned(),
    }
}

fn figment_file(figment: &Figment) -> Option<String> {
    figment.metadata().find_map(|m| match &m.source {
        Some(Source::File(path)) => Some(path.display().to_string()),
        _ => None,
    })
}

/// How a rejected value is quoted back; secrets are never shown.
fn shown(key: &str, actual: &Actual) -> String {
    if super::is_secret(key) {
        return "a value that is not shown because it is a secret".to_owned();
    }
    match actual {
        Actual::Str(s) => format!("{s:?}"),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Float(n) => n.to_string(),
        Actual::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}
