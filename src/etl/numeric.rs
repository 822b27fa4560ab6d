//! A provider's JSON number read exactly from its text and fitted to a Postgres `numeric(p,s)`
//! or `bigint` column, or refused with the reason it does not fit.
//!
//! Postgres rounds a value with more decimal places than the column's scale without a word, and a
//! value with too many integer digits (or one that rounding carries over the limit) fails the
//! whole statement. Both are decided here from the digits the provider wrote, before any
//! `Decimal` or `f64` could round them: `1.10` and `11.000000000` fit six places, `1.1234567`
//! and `1e-7` do not.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::domain::Price;

/// Why a number cannot be stored as the provider wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfit {
    /// The text is not a JSON number.
    NotANumber,
    /// More digits before the point than the column holds.
    TooLarge,
    /// Nonzero digits beyond the column's scale: Postgres would round them away.
    TooPrecise,
}

/// A column type: at most `integer_digits` digits before the point and `places` after it.
/// Their sum must stay within `Decimal`'s 28 digits.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Digits before the point (precision minus scale).
    pub integer_digits: i64,
    /// Digits after the point (the scale).
    pub places: i64,
}

/// `numeric(20,6)`, the price columns of `daily_prices`: [`Price`]'s bounds, for a provider's
/// notation (exponents, trailing zeros) rather than the API's.
pub const PRICE: Column = Column {
    integer_digits: Price::RULE.digits as i64,
    places: Price::RULE.places as i64,
};

/// `text`'s value, trailing zeros dropped, if `column` stores it without rounding.
pub fn fixed(text: &str, column: Column) -> Result<Decimal, Unfit> {
    let number = Parts::parse(text).ok_or(Unfit::NotANumber)?;
    if number.significant == 0 {
        return Ok(Decimal::ZERO);
    }
    if number.integer_digits() > column.integer_digits {
        return Err(Unfit::TooLarge);
    }
    if number.scale > column.places {
        return Err(Unfit::TooPrecise);
    }
    // Now at most `integer_digits + places` significant digits: an i128 holds them.
    let mut mantissa = number
        .digits()
        .fold(0i128, |m, d| m * 10 + i128::from(d - b'0'));
    for _ in number.scale..0 {
        mantissa *= 10;
    }
    if number.negative {
        mantissa = -mantissa;
    }
    let scale = u32::try_from(number.scale.max(0)).map_err(|_| Unfit::TooPrecise)?;
    Decimal::try_from_i128_with_scale(mantissa, scale).map_err(|_| Unfit::TooLarge)
}

/// `text`'s value, if it is a whole number a `bigint` holds.
pub fn whole(text: &str) -> Result<i64, Unfit> {
    let value = fixed(
        text,
        Column {
            integer_digits: 19,
            places: 0,
        },
    )?;
    value.to_i64().ok_or(Unfit::TooLarge)
}

/// A JSON number as `±digits × 10^-scale`, its digits without leading or trailing zeros.
struct Parts<'a> {
    negative: bool,
    integer: &'a [u8],
    fraction: &'a [u8],
    /// Zeros before the first significant digit, counted over `integer` then `fraction`.
    leading: usize,
    /// How many significant digits there are (0 for zero).
    significant: usize,
    /// Digits after the point once trailing zeros are dropped (negative for `12e3`).
    scale: i64,
}

/// Exponents beyond this are as absurd as any larger one, and keep the arithmetic far from
/// overflowing.
const EXPONENT_LIMIT: i64 = 1_000_000_000;

impl<'a> Parts<'a> {
    /// Reads JSON's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, leniently
    /// about leading zeros.
    fn parse(text: &'a str) -> Option<Self> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        let (integer, fraction) = match mantissa.split_once('.') {
            Some((integer, fraction)) if !fraction.is_empty() => (integer, fraction),
            Some(_) => return None,
            None => (mantissa, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if integer.is_empty() || !all_digits(integer) || !all_digits(fraction) {
            return None;
        }
        let exponent = match exponent {
            Some(text) => exponent_of(text)?,
            None => 0,
        };
        let (integer, fraction) = (integer.as_bytes(), fraction.as_bytes());
        let digits = integer.iter().chain(fraction);
        let total = integer.len() + fraction.len();
        let leading = digits.clone().take_while(|d| **d == b'0').count();
        let trailing = fraction
            .iter()
            .rev()
            .chain(integer.iter().rev())
            .take_while(|d| **d == b'0')
            .count();
        let significant = total.saturating_sub(leading + trailing);
        let scale = len(fraction) - exponent - len_of(trailing);
        Some(Self {
            negative,
            integer,
            fraction,
            leading,
            significant,
            scale,
        })
    }

    /// Digits before the point (zero or less for a value below one).
    fn integer_digits(&self) -> i64 {
        len_of(self.significant) - self.scale
    }

    /// The significant digits, as ASCII.
    fn digits(&self) -> impl Iterator<Item = u8> + '_ {
        self.integer
            .iter()
            .chain(self.fraction)
            .skip(self.leading)
            .take(self.significant)
            .copied()
    }
}

/// An exponent's value, clamped to ±[`EXPONENT_LIMIT`].
fn exponent_of(text: &str) -> Option<i64> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.bytes().fold(0i64, |e, d| {
        (e * 10 + i64::from(d - b'0')).min(EXPONENT_LIMIT)
    });
    Some(sign * magnitude)
}

fn len(digits: &[u8]) -> i64 {
    len_of(digits.len())
}

fn len_of(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(text: &str) -> Result<String, Unfit> {
        fixed(text, PRICE).map(|d| d.to_string())
    }

    #[test]
    fn prices_with_at_most_six_places_are_read_digit_for_digit() {
        assert_eq!(price("1.10"), Ok("1.1".to_owned()));
        assert_eq!(price("187.4425"), Ok("187.4425".to_owned()));
        assert_eq!(price("123.456789"), Ok("123.456789".to_owned()));
        assert_eq!(price("0"), Ok("0".to_owned()));
        assert_eq!(price("-0.0"), Ok("0".to_owned()));
        assert_eq!(price("-2.5"), Ok("-2.5".to_owned()));
        assert_eq!(price("1.5E2"), Ok("150".to_owned()));
        assert_eq!(price("12e-1"), Ok("1.2".to_owned()));
        assert_eq!(price("1e-6"), Ok("0.000001".to_owned()));
        assert_eq!(
            price("99999999999999.999999"),
            Ok("99999999999999.999999".to_owned())
        );
    }

    #[test]
    fn trailing_zeros_round_nothing_and_are_accepted() {
        assert_eq!(price("11.000000000"), Ok("11".to_owned()));
        assert_eq!(
            price("2.50000000000000000000000000000000"),
            Ok("2.5".to_owned())
        );
        assert_eq!(
            price("0.0000000000000000000000000000000"),
            Ok("0".to_owned())
        );
    }

    #[test]
    fn more_than_six_places_are_refused_however_written() {
        for text in [
            "1.1234567",
            "123.4567891",
            "1e-7",
            "1E-7",
            "0.00000012e1",
            "2.220446049250313e-16",
            "1.00000000000000000000000000001",
            "99999999999999.9999999",
            "5e-1000000000000000000000",
        ] {
            assert_eq!(price(text), Err(Unfit::TooPrecise), "{text}");
        }
    }

    #[test]
    fn more_than_fourteen_integer_digits_are_refused() {
        for text in [
            "100000000000000",
            "1e14",
            "123456789012345.5",
            "1e400",
            "79228162514264337593543950336",
        ] {
            assert_eq!(price(text), Err(Unfit::TooLarge), "{text}");
        }
        assert_eq!(price("1e13"), Ok("10000000000000".to_owned()));
    }

    #[test]
    fn what_is_not_a_json_number_is_refused() {
        for text in [
            "", "-", "x", "1.", ".5", "1e", "1e+", "1.2.3", "0x10", "NaN", " 1",
        ] {
            assert_eq!(price(text), Err(Unfit::NotANumber), "{text:?}");
        }
    }

    #[test]
    fn volumes_are_whole_and_fit_a_bigint() {
        assert_eq!(whole("61710900"), Ok(61_710_900));
        assert_eq!(whole("7.0790813e+07"), Ok(70_790_813));
        assert_eq!(whole("10.0"), Ok(10));
        assert_eq!(whole("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(whole("10.5"), Err(Unfit::TooPrecise));
        assert_eq!(whole("9223372036854775808"), Err(Unfit::TooLarge));
        assert_eq!(whole("1e19"), Err(Unfit::TooLarge));
        assert_eq!(whole("1e30"), Err(Unfit::TooLarge));
    }
}
