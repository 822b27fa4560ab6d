//! The rules request values follow that belong to the HTTP layer (dates in query strings and
//! bodies), and the bridge to the domain's rules (`crate::domain`): the check a handler runs and
//! the schema the OpenAPI document publishes come from the same rule, so a client generated from
//! the document sends only what the handlers accept, and the handlers refuse what it rules out.
//! The unit tests below hold every check and its pattern to the same answers.
//!
//! Patterns are ECMA-262 as JSON Schema reads them, written with the subset that Rust's `regex`
//! reads the same way (explicit classes, no `\d` or `\s`, whose meanings differ).

use chrono::{Datelike, NaiveDate};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{Required, Schema};

use super::AppError;

/// A 422 for a value of `field` its rule refuses: `field: ` and the rule's message.
pub fn invalid(field: &str, error: impl std::fmt::Display) -> AppError {
    AppError::Validation(format!("{field}: {error}"))
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

    fn compiled(pattern: &str) -> Regex {
        Regex::new(pattern).unwrap()
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
