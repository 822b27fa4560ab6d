//! Configuration errors, each one sentence naming the key and where its value came from.

use std::fmt;

use figment::error::{Actual, Kind};
use figment::providers::{Format, Toml};
use figment::value::Dict;
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
    /// The file named by `SIGMASIGHT_CONFIG` cannot be read.
    File { path: String, reason: String },
    /// The file named by `SIGMASIGHT_CONFIG` is not valid TOML. Only the position is kept: the
    /// parser's own message quotes the offending line, which may hold a secret.
    Syntax {
        path: String,
        line: usize,
        column: usize,
    },
    /// A bug in the settings table or its reader: a declared key that is never read, or one read
    /// as a kind its entry does not declare. Every test that loads a configuration finds it.
    Table { key: String, reason: String },
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
            Self::Syntax { path, line, column } => write!(
                f,
                "{}: cannot parse the configuration file \"{path}\": TOML syntax error at line {line}, column {column}",
                super::CONFIG_FILE_VAR
            ),
            Self::Table { key, reason } => write!(
                f,
                "{key}: {reason} (a bug in src/config/settings.rs or its reader)"
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
                expected: super::expectation(&key),
                got: shown(&key, &actual),
                key: env_name(&key),
                source,
            },
            Kind::UnknownVariant(got, _) => Self::Invalid {
                expected: super::expectation(&key),
                got: format!("{got:?}"),
                key: env_name(&key),
                source,
            },
            Kind::Message(message) if key.is_empty() => match figment_file(figment) {
                Some(path) => unloadable(path),
                None => Self::Invalid {
                    key: "configuration".to_owned(),
                    expected: "a valid configuration".to_owned(),
                    got: message,
                    source,
                },
            },
            other => Self::Invalid {
                expected: super::expectation(&key),
                got: if super::is_secret(&key) {
                    SECRET_NOT_SHOWN.to_owned()
                } else {
                    format!("an unusable value ({other})")
                },
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

/// Why the file at `path` did not load. Figment keeps only the parser's message, which quotes
/// the offending line (a secret, perhaps), so the file is read and parsed again here to learn
/// the position alone.
fn unloadable(path: String) -> ConfigError {
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            let reason = match error.kind() {
                std::io::ErrorKind::InvalidData => "it is not UTF-8 text".to_owned(),
                kind => kind.to_string(),
            };
            return ConfigError::File { path, reason };
        }
    };
    match Toml::from_str::<Dict>(&text).map_err(|e| e.span()) {
        Err(Some(span)) => {
            let (line, column) = position(&text, span.start);
            ConfigError::Syntax { path, line, column }
        }
        // No position, or the file changed between the two reads: still nothing is quoted.
        Err(None) | Ok(_) => ConfigError::File {
            path,
            reason: "not valid TOML".to_owned(),
        },
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`, counted as the TOML
/// parser counts them.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

const SECRET_NOT_SHOWN: &str = "a value that is not shown because it is a secret";

/// How a rejected value is quoted back; secrets are never shown.
fn shown(key: &str, actual: &Actual) -> String {
    if super::is_secret(key) {
        return SECRET_NOT_SHOWN.to_owned();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        let text = "port = 1\nlog_level = \"é\" x\n";
        assert_eq!(position(text, 0), (1, 1));
        assert_eq!(position(text, text.find('x').unwrap()), (2, 17));
        assert_eq!(position(text, text.len()), (3, 1));
    }

    #[test]
    fn a_file_that_is_not_utf8_is_refused_without_quoting_it() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, b"secret_key = \"\xff-hidden\"\n").unwrap();
        let path = file.path().display().to_string();
        let err = unloadable(path.clone());
        assert_eq!(
            err.to_string(),
            format!(
                "SIGMASIGHT_CONFIG: cannot read the configuration file \"{path}\": it is not UTF-8 text"
            )
        );
    }
}
