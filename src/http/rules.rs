//! The rules request values follow, each written once: the check a handler runs and the schema
//! the OpenAPI document publishes come from the same rule, so a client generated from the
//! document sends only what the handlers accept, and the handlers refuse what it rules out.
//! The unit tests below hold every check and its pattern to the same answers.
//!
//! Patterns are ECMA-262 as JSON Schema reads them, written with the subset that Rust's `regex`
//! reads the same way (explicit classes, no `\d` or `\s`, whose meanings differ).

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{Required, Schema};

use super::AppError;
use crate::config::SYMBOL_PATTERN;

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

/// A decimal as `numeric` stores it, in plain notation: an optional `-` (when negatives are
/// allowed), an integer part without leading zeros of at most `digits` digits, and optionally a
/// point and 1 to `places` digits. The value is parsed exactly, never rounded.
#[derive(Debug, Clone, Copy)]
pub struct DecimalRule {
    /// The field's name, for error messages.
    pub name: &'static str,
    /// Most digits before the point.
    pub digits: usize,
    /// Most digits after the point.
    pub places: usize,
    /// Whether a negative value is allowed.
    pub negative: bool,
    /// Whether zero is allowed.
    pub zero: bool,
}

impl DecimalRule {
    /// The value of `text`, or a 422 naming the field and what it expects.
    pub fn parse(&self, text: &str) -> Result<Decimal, AppError> {
        let name = self.name;
        let shape = match text.strip_prefix('-') {
            // A negative number where none is allowed gets its own sentence.
            Some(rest) if !self.negative && self.unsigned_shape(rest) => {
                return Err(AppError::Validation(format!(
                    "{name}: must not be negative"
                )));
            }
            Some(rest) => self.negative && self.unsigned_shape(rest),
            None => self.unsigned_shape(text),
        };
        let value = shape
            .then(|| Decimal::from_str_exact(text).ok())
            .flatten()
            .ok_or_else(|| {
                AppError::Validation(format!(
                    "{name}: expected a decimal such as 12.5, with at most {} digits before \
                     the point and {} after it, got {text:?}",
                    self.digits, self.places
                ))
            })?;
        if value.is_zero() && !self.zero {
            return Err(AppError::Validation(format!("{name}: must not be zero")));
        }
        Ok(value)
    }

    fn unsigned_shape(&self, text: &str) -> bool {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (integer, fraction) = match text.split_once('.') {
            Some((integer, fraction)) => (integer, Some(fraction)),
            None => (text, None),
        };
        digits(integer)
            && (integer == "0" || (!integer.starts_with('0') && integer.len() <= self.digits))
            && fraction.is_none_or(|f| digits(f) && f.len() <= self.places)
    }

    /// The pattern of the texts [`DecimalRule::parse`] accepts.
    pub fn pattern(&self) -> String {
        let sign = if self.negative { "-?" } else { "" };
        let places = self.places;
        let nonzero_integer = format!("[1-9][0-9]{{0,{}}}", self.digits - 1);
        let fraction = format!(r"(?:\.[0-9]{{1,{places}}})?");
        let body = if self.zero {
            format!("(?:0|{nonzero_integer}){fraction}")
        } else {
            // Zero before the point: some digit after it must not be zero. One branch per count
            // of leading zeros keeps the whole fraction within `places` digits.
            let nonzero_fractions: Vec<String> = (0..places)
                .map(|zeros| {
                    let rest = places - zeros - 1;
                    let tail = if rest == 0 {
                        String::new()
                    } else {
                        format!("[0-9]{{0,{rest}}}")
                    };
                    format!("{}[1-9]{tail}", "0".repeat(zeros))
                })
                .collect();
            format!(
                r"(?:{nonzero_integer}{fraction}|0\.(?:{}))",
                nonzero_fractions.join("|")
            )
        };
        format!("^{sign}{body}$")
    }

    /// A string schema with this rule's pattern.
    pub fn schema(&self, description: &str, example: &str) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(self.pattern()))
            .description(Some(description))
            .examples([example])
            .build()
    }
}

/// The earliest date any request takes: Postgres `date` and every market reach back further,
/// but no bar or position does.
pub fn earliest_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default()
}

/// `text` as a `YYYY-MM-DD` date (RFC 3339's `full-date`, what `format: date` means), or `None`.
/// Stricter than chrono's `%Y-%m-%d`, which also takes `+2024-1-2` and leading spaces.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shaped {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<u32>().ok();
    let year = i32::try_from(number(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)
}

/// The pattern of the `YYYY-MM-DD` dates from [`earliest_date`] to `last` (inclusive; `format:
/// date` rules out the days a month does not have).
pub fn date_pattern(last: NaiveDate) -> String {
    let (year, month, day) = (last.year(), last.month(), last.day());
    let first_year = earliest_date().year();
    let any_month = numerals(1, 12, 2);
    let any_day = numerals(1, 31, 2);
    let mut branches = Vec::new();
    if year > first_year {
        let years = numerals(first_year.unsigned_abs(), year.unsigned_abs() - 1, 4);
        branches.push(format!("{years}-{any_month}-{any_day}"));
    }
    if month > 1 {
        branches.push(format!("{year:04}-{}-{any_day}", numerals(1, month - 1, 2)));
    }
    branches.push(format!("{year:04}-{month:02}-{}", numerals(1, day, 2)));
    format!("^(?:{})$", branches.join("|"))
}

/// A `format: date` string schema for the dates from [`earliest_date`] to `last`.
pub fn date_schema(last: NaiveDate, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .pattern(Some(date_pattern(last)))
        .description(Some(description))
        .build()
}

/// A pattern matching the `width`-digit numerals (zero-padded) from `low` to `high`.
fn numerals(low: u32, high: u32, width: usize) -> String {
    let low = format!("{low:0width$}");
    let high = format!("{high:0width$}");
    span(low.as_bytes(), high.as_bytes())
}

/// The numerals from `low` to `high`, digit strings of one length with `low <= high`: split on
/// the first digit into the part that shares `low`'s, the full middle, and the part that shares
/// `high`'s.
fn span(low: &[u8], high: &[u8]) -> String {
    let (Some((&l, low_rest)), Some((&h, high_rest))) = (low.split_first(), high.split_first())
    else {
        return String::new();
    };
    let n = low_rest.len();
    if l == h {
        return format!("{}{}", char::from(l), span(low_rest, high_rest));
    }
    if low_rest.iter().all(|&d| d == b'0') && high_rest.iter().all(|&d| d == b'9') {
        return format!("{}{}", digits(l, h), any_digits(n));
    }
    let mut branches = vec![format!(
        "{}{}",
        char::from(l),
        span(low_rest, &vec![b'9'; n])
    )];
    if h - l > 1 {
        branches.push(format!("{}{}", digits(l + 1, h - 1), any_digits(n)));
    }
    branches.push(format!(
        "{}{}",
        char::from(h),
        span(&vec![b'0'; n], high_rest)
    ));
    format!("(?:{})", branches.join("|"))
}

/// One digit from `low` to `high` (ASCII digits).
fn digits(low: u8, high: u8) -> String {
    if low == high {
        char::from(low).to_string()
    } else {
        format!("[{}-{}]", char::from(low), char::from(high))
    }
}

/// `n` digits of any value.
fn any_digits(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => "[0-9]".to_owned(),
        n => format!("[0-9]{{{n}}}"),
    }
}

/// A string schema for a ticker (`crate::config::is_symbol`).
pub fn symbol_schema(description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(SYMBOL_PATTERN))
        .description(Some(description))
        .examples(["AAPL"])
        .build()
}

/// A parameter of the document: for the `IntoParams` written by hand where a rule's schema is
/// built here (the derive drops a parameter's description when given a schema).
pub fn parameter(
    name: &str,
    location: ParameterIn,
    required: bool,
    description: &str,
    schema: impl Into<Schema>,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(location)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(description))
        .schema(Some(schema.into()))
        .build()
}

#[cfg(test)]
mod tests {
    use chrono::Days;
    use regex::Regex;

    use super::*;
    use crate::config::is_symbol;

    /// Strings drawn from `alphabet`, of every length up to `max_len`, by a seeded generator:
    /// the same cases on every run.
    fn samples(alphabet: &[char], max_len: usize, count: usize) -> Vec<String> {
        let mut rng = fastrand::Rng::with_seed(7);
        (0..count)
            .map(|_| {
                let len = rng.usize(0..=max_len);
                (0..len)
                    .map(|_| alphabet[rng.usize(..alphabet.len())])
                    .collect()
            })
            .collect()
    }

    fn compiled(pattern: &str) -> Regex {
        Regex::new(pattern).unwrap()
    }

    #[test]
    fn the_symbol_pattern_accepts_exactly_the_tickers_is_symbol_accepts() {
        let pattern = compiled(SYMBOL_PATTERN);
        let alphabet: Vec<char> = "AZ09.^-a \n_".chars().collect();
        for text in samples(&alphabet, 22, 20_000) {
            assert_eq!(pattern.is_match(&text), is_symbol(&text), "{text:?}");
        }
    }

    #[test]
    fn a_text_pattern_accepts_exactly_the_texts_its_check_accepts() {
        // Each kind of character the rule treats apart: plain, white space that is control or
        // not, control that is not white space, and a character outside the BMP.
        let alphabet: Vec<char> = [
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
        ]
        .into_iter()
        .collect();
        for rule in [TextRule { min: 1, max: 5 }, TextRule { min: 0, max: 4 }] {
            let pattern = compiled(&rule.pattern());
            for text in samples(&alphabet, 9, 50_000) {
                assert_eq!(
                    pattern.is_match(&text),
                    rule.check(&text).is_some(),
                    "{rule:?} {text:?}"
                );
            }
        }
    }

    #[test]
    fn a_text_rule_counts_characters_after_trimming() {
        let name = TextRule { min: 1, max: 100 };
        let pattern = compiled(&name.pattern());

        for (text, trimmed) in [
            (format!("  {}  ", "é".repeat(100)), Some("é".repeat(100))),
            ("é".repeat(101), None),
            (" \u{3000} ".to_owned(), None),
            ("a\u{95}b".to_owned(), None),
        ] {
            assert_eq!(name.check(&text).map(str::to_owned), trimmed, "{text:?}");
            assert_eq!(pattern.is_match(&text), trimmed.is_some(), "{text:?}");
        }
    }

    const QUANTITY: DecimalRule = DecimalRule {
        name: "quantity",
        digits: 4,
        places: 3,
        negative: true,
        zero: false,
    };
    const COST: DecimalRule = DecimalRule {
        name: "cost",
        digits: 3,
        places: 2,
        negative: false,
        zero: true,
    };

    #[test]
    fn a_decimal_pattern_accepts_exactly_the_texts_its_parser_accepts() {
        let alphabet: Vec<char> = "0019.-+e ,_".chars().collect();
        for rule in [QUANTITY, COST] {
            let pattern = compiled(&rule.pattern());
            for text in samples(&alphabet, 10, 100_000) {
                assert_eq!(
                    pattern.is_match(&text),
                    rule.parse(&text).is_ok(),
                    "{rule:?} {text:?}"
                );
            }
        }
    }

    #[test]
    fn a_decimal_is_parsed_exactly_within_its_bounds() {
        let value = |rule: DecimalRule, text: &str| rule.parse(text).map(|d| d.to_string()).ok();

        assert_eq!(value(QUANTITY, "-9999.999"), Some("-9999.999".to_owned()));
        assert_eq!(value(QUANTITY, "0.001"), Some("0.001".to_owned()));
        assert_eq!(value(QUANTITY, "10000"), None);
        assert_eq!(value(QUANTITY, "1.0000"), None);
        assert_eq!(value(QUANTITY, "0.000"), None);
        assert_eq!(value(QUANTITY, "01"), None);
        assert_eq!(value(QUANTITY, " 1"), None);
        assert_eq!(value(COST, "0"), Some("0".to_owned()));
        assert_eq!(value(COST, "-0"), None);
        assert!(COST
            .parse("-1")
            .unwrap_err()
            .to_string()
            .contains("negative"));
        assert!(QUANTITY
            .parse("0")
            .unwrap_err()
            .to_string()
            .contains("zero"));
    }

    #[test]
    fn parse_date_takes_only_full_dates() {
        assert_eq!(
            parse_date("2024-02-29"),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
        for bad in [
            "2023-02-29",
            "2024-2-29",
            "+2024-02-29",
            " 2024-02-29",
            "2024-02-29 ",
            "20240-02-29",
            "2024/02/29",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_date_pattern_accepts_exactly_the_dates_from_1900_to_its_last_day() {
        let earliest = earliest_date();
        let from = earliest - Days::new(400);
        for last in [
            earliest,
            NaiveDate::from_ymd_opt(1900, 12, 31).unwrap(),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(),
            NaiveDate::from_ymd_opt(2026, 10, 9).unwrap(),
            NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
        ] {
            let pattern = compiled(&date_pattern(last));
            let mut day = from;
            while day <= last + Days::new(800) {
                let text = day.format("%Y-%m-%d").to_string();
                assert_eq!(
                    pattern.is_match(&text),
                    (earliest..=last).contains(&day),
                    "{last}: {text}"
                );
                day = day + Days::new(1);
            }
        }
        let last = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
        let pattern = compiled(&date_pattern(last));
        for (text, matches) in [
            ("1900-01-01", true),
            ("9999-12-31", true),
            ("1899-12-31", false),
            ("0826-11-27", false),
            ("2024-13-01", false),
            ("2024-00-10", false),
            ("2024-01-32", false),
            ("2024-1-05", false),
        ] {
            assert_eq!(pattern.is_match(text), matches, "{text}");
        }
    }
}
