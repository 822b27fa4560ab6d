//! Free text with a length rule: [`TextRule`], and [`PortfolioName`] built on it.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// What `str::trim` drops: the characters with Unicode's White_Space property.
const WHITE_SPACE: &str =
    r"\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// What `char::is_control` is true of: the Cc category.
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";
/// Neither control nor white space: what may begin or end a trimmed text. (U+0009-U+000D,
/// U+0020 and U+0085 are already in the two control ranges as widened here.)
const EDGE_EXCLUDED: &str =
    r"\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Free text such as a name: surrounding white space is dropped, and what remains holds
/// `min` to `max` characters (`min` is 0 or 1), none of them a control character.
#[derive(Debug, Clone, Copy)]
pub struct TextRule {
    /// Fewest characters after trimming: 0 (the text may be blank) or 1.
    pub min: usize,
    /// Most characters after trimming (at least 2).
    pub max: usize,
}

impl TextRule {
    /// The trimmed text, or `None` when it breaks the rule.
    pub fn check<'a>(&self, text: &'a str) -> Option<&'a str> {
        let trimmed = text.trim();
        let chars = trimmed.chars().count();
        let fits = (self.min..=self.max).contains(&chars) && !trimmed.chars().any(char::is_control);
        fits.then_some(trimmed)
    }

    /// The pattern of the texts [`TextRule::check`] accepts: white space, a first and last
    /// character that are neither white space nor control, printable characters between them,
    /// white space.
    pub fn pattern(&self) -> String {
        let core = format!(
            "[^{EDGE_EXCLUDED}](?:[^{CONTROL}]{{0,{}}}[^{EDGE_EXCLUDED}])?",
            self.max.saturating_sub(2)
        );
        let optional = if self.min == 0 { "?" } else { "" };
        format!("^[{WHITE_SPACE}]*(?:{core}){optional}[{WHITE_SPACE}]*$")
    }

    /// A string schema with this rule's pattern.
    pub fn schema(&self, description: &str) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length((self.min > 0).then_some(self.min))
            .pattern(Some(self.pattern()))
            .description(Some(description))
            .build()
    }
}

/// A portfolio's name, trimmed: 1-100 characters, none of them a control character
/// (`portfolios.name`, whose CHECK holds the length). Stored as `text`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct PortfolioName(String);

/// A text that is no portfolio name. Its message is the one users read, after the field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 1 to {} printable characters", PortfolioName::RULE.max)]
pub struct PortfolioNameError;

impl PortfolioName {
    /// The rule its values follow (before trimming).
    pub const RULE: TextRule = TextRule { min: 1, max: 100 };

    /// `text` without surrounding white space, if that is a name.
    pub fn parse(text: &str) -> Result<Self, PortfolioNameError> {
        Self::RULE
            .check(text)
            .map(|name| Self(name.to_owned()))
            .ok_or(PortfolioNameError)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Read-only access to the text: a name is passed wherever a `&str` is read.
impl Deref for PortfolioName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PortfolioName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PortfolioName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;

    #[test]
    fn a_text_pattern_accepts_exactly_the_texts_its_check_accepts() {
        // Each kind of character the rule treats apart: plain, white space that is control or
        // not, control that is not white space, and a character outside the BMP.
        let alphabet = [
            'a',
            'é',
            ' ',
            '\u{a0}',
            '\u{3000}',
            '\t',
            '\n',
            '\u{85}',
            '\u{0}',
            '\u{7f}',
            '\u{9f}',
            '\u{feff}',
            '\u{1F600}',
        ];
        for rule in [TextRule { min: 1, max: 5 }, TextRule { min: 0, max: 4 }] {
            let pattern = Regex::new(&rule.pattern()).unwrap();
            for text in crate::domain::samples(&alphabet, 9, 50_000) {
                assert_eq!(
                    pattern.is_match(&text),
                    rule.check(&text).is_some(),
                    "{rule:?} {text:?}"
                );
            }
        }
    }

    #[test]
    fn a_portfolio_name_counts_characters_after_trimming() {
        let pattern = Regex::new(&PortfolioName::RULE.pattern()).unwrap();

        for (text, trimmed) in [
            (format!("  {}  ", "é".repeat(100)), Some("é".repeat(100))),
            ("é".repeat(101), None),
            (" \u{3000} ".to_owned(), None),
            (String::new(), None),
            ("a\u{95}b".to_owned(), None),
        ] {
            let name = PortfolioName::parse(&text).ok();
            assert_eq!(name.as_deref(), trimmed.as_deref(), "{text:?}");
            assert_eq!(pattern.is_match(&text), trimmed.is_some(), "{text:?}");
        }
        assert_eq!(
            PortfolioName::parse("").unwrap_err().to_string(),
            "expected 1 to 100 printable characters"
        );
    }

    #[test]
    fn a_json_name_is_trimmed_and_checked_as_it_is_read() {
        let name: PortfolioName = serde_json::from_str(r#"" Core ""#).unwrap();
        assert_eq!(name.as_str(), "Core");
        assert!(serde_json::from_str::<PortfolioName>(r#""\u0007""#).is_err());
        assert!(serde_json::from_str::<PortfolioName>("5").is_err());
    }
}
