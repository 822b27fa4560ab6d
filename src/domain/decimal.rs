//! Exact decimals in the bounds of their `numeric` columns: [`Quantity`] and [`Price`], both
//! read by one [`DecimalRule`] each.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// A decimal as `numeric` stores it, in plain notation: an optional `-` (when negatives are
/// allowed), an integer part without leading zeros of at most `digits` digits, and optionally a
/// point and 1 to `places` digits. The value is parsed exactly, never rounded.
#[derive(Debug, Clone, Copy)]
pub struct DecimalRule {
    /// Most digits before the point.
    pub digits: usize,
    /// Most digits after the point.
    pub places: usize,
    /// Whether a negative value is allowed.
    pub negative: bool,
    /// Whether zero is allowed.
    pub zero: bool,
}

/// Why a text is not a decimal its rule accepts. The message is the one users read, after the
/// field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// A well-formed negative number where none is allowed.
    #[error("must not be negative")]
    Negative,
    /// Zero where it is not allowed.
    #[error("must not be zero")]
    Zero,
    /// Not a decimal in plain notation within the column's digits.
    #[error(
        "expected a decimal such as 12.5, with at most {digits} digits before the point and \
         {places} after it, got {text:?}"
    )]
    Malformed {
        /// The rule's digits before the point.
        digits: usize,
        /// The rule's digits after the point.
        places: usize,
        /// The text refused.
        text: String,
    },
    /// A JSON value that is not a string (a JSON number included: the document says string,
    /// and a client's float may already have lost digits).
    #[error("expected a decimal as a JSON string, such as \"10.5\"")]
    NotText,
}

impl DecimalRule {
    /// The value of `text`.
    pub fn parse(&self, text: &str) -> Result<Decimal, DecimalError> {
        let shape = match text.strip_prefix('-') {
            // A negative number where none is allowed gets its own sentence.
            Some(rest) if !self.negative && self.unsigned_shape(rest) => {
                return Err(DecimalError::Negative);
            }
            Some(rest) => self.negative && self.unsigned_shape(rest),
            None => self.unsigned_shape(text),
        };
        let value = shape
            .then(|| Decimal::from_str_exact(text).ok())
            .flatten()
            .ok_or_else(|| DecimalError::Malformed {
                digits: self.digits,
                places: self.places,
                text: text.to_owned(),
            })?;
        if value.is_zero() && !self.zero {
            return Err(DecimalError::Zero);
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

    /// A JSON string (`"10.5"`) or number (`10.5`), read from its text so that it is parsed
    /// exactly (serde_json's `arbitrary_precision` keeps a number's digits).
    fn deserialize<'de, D: Deserializer<'de>>(&self, deserializer: D) -> Result<Decimal, D::Error> {
        let text = match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => text,
            _ => return Err(serde::de::Error::custom(DecimalError::NotText)),
        };
        self.parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Declares a decimal type read by its rule: parse, Display (without trailing zeros), serde
/// (as a JSON string, read from one) and sqlx (transparent over `numeric`).
macro_rules! decimal_type {
    ($(#[$doc:meta])* $name:ident, $rule:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(Decimal);

        impl $name {
            /// The rule its values follow.
            pub const RULE: DecimalRule = $rule;

            /// `text` as a value of this type.
            pub fn parse(text: &str) -> Result<Self, DecimalError> {
                Self::RULE.parse(text).map(Self)
            }

            /// The exact value.
            pub fn value(self) -> Decimal {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.normalize(), f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Self::RULE.deserialize(deserializer).map(Self)
            }
        }
    };
}

decimal_type!(
    /// Shares held: `positions.quantity`, `numeric(24,8)`, never zero (the table's CHECK) and
    /// negative for a short position.
    Quantity,
    DecimalRule {
        digits: 16,
        places: 8,
        negative: true,
        zero: false,
    }
);

decimal_type!(
    /// A price per share: `numeric(20,6)` and at least 0, as `daily_prices`' prices and
    /// `positions.cost_basis` are (their CHECKs).
    Price,
    DecimalRule {
        digits: 14,
        places: 6,
        negative: false,
        zero: true,
    }
);

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;

    const QUANTITY: DecimalRule = DecimalRule {
        digits: 4,
        places: 3,
        negative: true,
        zero: false,
    };
    const COST: DecimalRule = DecimalRule {
        digits: 3,
        places: 2,
        negative: false,
        zero: true,
    };

    #[test]
    fn a_decimal_pattern_accepts_exactly_the_texts_its_parser_accepts() {
        let alphabet: Vec<char> = "0019.-+e ,_".chars().collect();
        for rule in [QUANTITY, COST, Quantity::RULE, Price::RULE] {
            let pattern = Regex::new(&rule.pattern()).unwrap();
            for text in crate::domain::samples(&alphabet, 10, 100_000) {
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
        assert_eq!(COST.parse("-1"), Err(DecimalError::Negative));
        assert_eq!(QUANTITY.parse("0"), Err(DecimalError::Zero));
    }

    #[test]
    fn quantities_and_prices_hold_their_columns_edges() {
        let quantity = |text: &str| Quantity::parse(text).map(|q| q.to_string());
        let price = |text: &str| Price::parse(text).map(|p| p.to_string());

        assert_eq!(
            quantity("-9999999999999999.99999999").as_deref(),
            Ok("-9999999999999999.99999999")
        );
        assert_eq!(quantity("0.00000001").as_deref(), Ok("0.00000001"));
        assert_eq!(quantity("10.50").as_deref(), Ok("10.5"));
        assert_eq!(quantity("0.00000000"), Err(DecimalError::Zero));
        assert!(quantity("10000000000000000").is_err());
        assert!(quantity("1.123456789").is_err());
        assert_eq!(
            price("99999999999999.999999").as_deref(),
            Ok("99999999999999.999999")
        );
        assert_eq!(price("0").as_deref(), Ok("0"));
        assert_eq!(price("-1"), Err(DecimalError::Negative));
        assert!(price("100000000000000").is_err());
        assert!(price("1.1234567").is_err());
    }

    #[test]
    fn decimal_errors_say_what_is_expected() {
        assert_eq!(
            Quantity::parse("ten").unwrap_err().to_string(),
            "expected a decimal such as 12.5, with at most 16 digits before the point and 8 \
             after it, got \"ten\""
        );
        assert_eq!(
            Price::parse("-2").unwrap_err().to_string(),
            "must not be negative"
        );
        assert_eq!(
            Quantity::parse("-0").unwrap_err().to_string(),
            "must not be zero"
        );
    }

    #[test]
    fn a_json_decimal_is_read_from_a_string_only_and_sent_as_a_string() {
        let quantity: Quantity = serde_json::from_str(r#""12.50""#).unwrap();
        assert_eq!(serde_json::to_string(&quantity).unwrap(), r#""12.5""#);
        let price: Price = serde_json::from_str(r#""187.4425""#).unwrap();
        assert_eq!(price.value(), Decimal::new(1_874_425, 4));
        for bad in ["12.50", "true", "null", r#""1e3""#, "1e3", r#""0""#] {
            assert!(serde_json::from_str::<Quantity>(bad).is_err(), "{bad}");
        }
    }
}
