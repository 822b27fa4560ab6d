//! The value types of the domain, each holding only a value its rule accepts: a ticker
//! ([`Symbol`]), a position's size ([`Quantity`]), a price ([`Price`]), a portfolio's name
//! ([`PortfolioName`]). Each rule is written once, here: the parser, the error users read, the
//! OpenAPI schema and the spelling the tables' CHECKs hold. The API, the ETL, the CLI and the
//! configuration parse through these types at their edges and pass the values on.
//!
//! A type's `Deserialize` parses, so a JSON body field of that type is checked while it is read.
//! Every error's message opens with "expected" or "must not" and never names the field: the
//! caller, which knows the field, puts its name in front (`quantity: must not be zero`);
//! [`is_rule_message`] tells these messages from serde's own.
//!
//! Patterns are ECMA-262 as JSON Schema reads them, written with the subset that Rust's `regex`
//! reads the same way (explicit classes, no `\d` or `\s`, whose meanings differ).

mod bar;
mod decimal;
mod role;
mod symbol;
mod text;

pub use bar::{Bar, DEMO_SOURCE};
pub use decimal::{DecimalError, DecimalRule, Price, Quantity};
pub use role::Role;
pub use symbol::{Symbol, SymbolError};
pub use text::{PortfolioName, PortfolioNameError, TextRule};

/// Whether `message` is one of this module's errors (they all open with "expected" or
/// "must not"), rather than one of serde's own (`invalid type: ...`, `missing field ...`).
pub fn is_rule_message(message: &str) -> bool {
    message.starts_with("expected ") || message.starts_with("must not ")
}

/// Strings drawn from `alphabet`, of every length up to `max_len`, by a seeded generator: the
/// same cases on every run.
#[cfg(test)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_error_is_a_rule_message_and_serdes_own_are_not() {
        let rule_errors = [
            Symbol::parse("aapl").unwrap_err().to_string(),
            Quantity::parse("0").unwrap_err().to_string(),
            Quantity::parse("x").unwrap_err().to_string(),
            Price::parse("-1").unwrap_err().to_string(),
            PortfolioName::parse(" ").unwrap_err().to_string(),
            serde_json::from_str::<Quantity>("true")
                .unwrap_err()
                .to_string(),
        ];
        for message in rule_errors {
            assert!(is_rule_message(&message), "{message}");
        }
        for message in [
            "invalid type: integer `5`, expected a string",
            "missing field `symbol`",
            "unknown field `owner`, expected `name`",
        ] {
            assert!(!is_rule_message(message), "{message}");
        }
    }
}
