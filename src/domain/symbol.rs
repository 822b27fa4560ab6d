//! [`Symbol`]: a ticker, spelt as every table's `symbol` column requires.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// A ticker: 1 to 20 of `A-Z 0-9 . ^ -`, not starting with `.` or `-` (`AAPL`, `BRK.B`, `BF-B`,
/// `^GSPC`). Stored as `text`; the tables' CHECKs hold the same rule, so a value read back from
/// them is one too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct Symbol(String);

/// A text that is not a ticker. Its message is the one users read, after the field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected an upper-case ticker such as AAPL or BRK.B ({spelling}), got {0:?}",
    spelling = Symbol::SPELLING
)]
pub struct SymbolError(String);

impl SymbolError {
    /// The text that was refused.
    pub fn text(&self) -> &str {
        &self.0
    }
}

impl Symbol {
    /// The rule as the OpenAPI document and the tables' CHECKs (`migrations/`) write it.
    pub const PATTERN: &'static str = "^[A-Z0-9^][A-Z0-9.^-]{0,19}$";
    /// The most characters a ticker has.
    pub const MAX_LEN: usize = 20;
    /// The rule in words, for messages.
    pub const SPELLING: &'static str = "letters, digits and . - ^, at most 20";

    /// `text` as a ticker, exactly as given (no trimming or upper-casing: callers that want
    /// those, such as the command line, do them first).
    pub fn parse(text: &str) -> Result<Self, SymbolError> {
        Self::try_from(text.to_owned())
    }

    /// Whether `text` is spelt as [`Symbol::PATTERN`] requires.
    pub fn is_valid(text: &str) -> bool {
        match text.as_bytes().split_first() {
            Some((first, rest)) => {
                (first.is_ascii_uppercase() || first.is_ascii_digit() || *first == b'^')
                    && rest.len() < Self::MAX_LEN
                    && rest.iter().all(|b| {
                        b.is_ascii_uppercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'.' | b'^' | b'-')
                    })
            }
            None => false,
        }
    }

    /// The ticker.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A string schema of this rule, with an example.
    pub fn schema(description: &str) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(Self::PATTERN))
            .description(Some(description))
            .examples(["AAPL"])
            .build()
    }
}

impl TryFrom<String> for Symbol {
    type Error = SymbolError;

    fn try_from(text: String) -> Result<Self, SymbolError> {
        if Self::is_valid(&text) {
            Ok(Self(text))
        } else {
            Err(SymbolError(text))
        }
    }
}

impl From<Symbol> for String {
    fn from(symbol: Symbol) -> Self {
        symbol.0
    }
}

/// Read-only access to the text: a ticker is passed wherever a `&str` is read.
impl Deref for Symbol {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Symbol {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::try_from(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;

    #[test]
    fn tickers_follow_the_table_rule() {
        for good in [
            "SPY",
            "BRK.B",
            "BF-B",
            "^GSPC",
            "A",
            "1",
            "ABCDEFGHIJKLMNOPQRST",
        ] {
            assert_eq!(Symbol::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "spy",
            ".A",
            "-A",
            "A B",
            " A",
            "A_B",
            "ABCDEFGHIJKLMNOPQRSTU",
        ] {
            assert_eq!(
                Symbol::parse(bad),
                Err(SymbolError(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_refused_ticker_is_quoted_after_the_rule() {
        assert_eq!(
            Symbol::parse("brk.b").unwrap_err().to_string(),
            "expected an upper-case ticker such as AAPL or BRK.B (letters, digits and . - ^, at \
             most 20), got \"brk.b\""
        );
    }

    #[test]
    fn the_pattern_accepts_exactly_the_tickers_the_parser_accepts() {
        let pattern = Regex::new(Symbol::PATTERN).unwrap();
        let alphabet: Vec<char> = "AZ09.^-a \n_".chars().collect();
        for text in crate::domain::samples(&alphabet, 22, 20_000) {
            assert_eq!(pattern.is_match(&text), Symbol::is_valid(&text), "{text:?}");
        }
    }

    #[test]
    fn a_json_ticker_is_checked_as_it_is_read() {
        let symbol: Symbol = serde_json::from_str(r#""BRK.B""#).unwrap();
        assert_eq!(symbol.as_str(), "BRK.B");
        assert_eq!(serde_json::to_string(&symbol).unwrap(), r#""BRK.B""#);
        let error = serde_json::from_str::<Symbol>(r#""aapl""#).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("expected an upper-case ticker"),
            "{error}"
        );
    }
}
