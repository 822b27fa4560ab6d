//! Which bars may be stored. A bar is stored whole or not at all: a missing or unreadable field,
//! a price with more than six decimal places or more than fourteen integer digits (what
//! `numeric(20,6)` holds), a negative price, high below low, open or close outside [low, high], a
//! volume that is negative, fractional or beyond `bigint`, a date after today in New York, a
//! date the exchange was closed (a weekend, a holiday, a one-off closure: [`super::calendar`]),
//! whichever provider sent it, or a date that appears twice in one payload rejects it, and the
//! reject is counted and recorded.
//! The table would round the extra decimals without a word, and its CHECKs and column limits
//! refuse the rest only by failing the whole batch; here one bad bar costs only itself.

use std::collections::HashMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::Number;

use super::calendar;
use super::numeric::{self, Unfit};
use super::provider::RawBar;

pub use crate::domain::Bar;

/// A rejected bar and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The ticker.
    pub symbol: String,
    /// The bar's date, when it had a readable one.
    pub date: Option<NaiveDate>,
    /// Why, in a few words.
    pub reason: &'static str,
}

/// What one payload came to.
#[derive(Debug, Default)]
pub struct Checked {
    /// The bars to store.
    pub bars: Vec<Bar>,
    /// The bars refused.
    pub rejects: Vec<Reject>,
}

/// Checks one payload's bars (one symbol's, or one grouped day's). Bars dated outside
/// `from..=to` are dropped without counting: providers round ranges out to whole pages.
pub fn check(raws: Vec<RawBar>, from: NaiveDate, to: NaiveDate, today: NaiveDate) -> Checked {
    // A (symbol, date) twice in one payload: the provider contradicts itself, so neither is kept.
    let mut seen: HashMap<(&str, NaiveDate), u32> = HashMap::new();
    for raw in &raws {
        if let Some(date) = raw.date {
            *seen.entry((raw.symbol.as_str(), date)).or_default() += 1;
        }
    }
    let duplicated: Vec<(String, NaiveDate)> = seen
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((s, d), _)| (s.to_owned(), d))
        .collect();

    let mut checked = Checked::default();
    for raw in raws {
        if raw.date.is_some_and(|d| d < from || (d > to && d <= today)) {
            continue;
        }
        let is_duplicate = raw.date.is_some_and(|d| {
            duplicated
                .iter()
                .any(|(s, dd)| *s == raw.symbol && *dd == d)
        });
        let result = if is_duplicate {
            Err("the date appears more than once in the payload")
        } else {
            bar(&raw, today)
        };
        match result {
            Ok(bar) => checked.bars.push(bar),
            Err(reason) => checked.rejects.push(Reject {
                symbol: raw.symbol,
                date: raw.date,
                reason,
            }),
        }
    }
    checked
}

fn bar(raw: &RawBar, today: NaiveDate) -> Result<Bar, &'static str> {
    fn text(n: Option<&Number>) -> &str {
        n.map_or("", Number::as_str)
    }
    fields(
        &raw.symbol,
        raw.date,
        Prices {
            open: text(raw.open.as_ref()),
            high: text(raw.high.as_ref()),
            low: text(raw.low.as_ref()),
            close: text(raw.close.as_ref()),
            adj_close: raw.adj_close.as_ref().map(Number::as_str),
        },
        text(raw.volume.as_ref()),
        today,
    )
}

/// A bar's prices as written by its source (a provider's JSON number, a CSV field); an empty
/// text is a missing price.
#[derive(Debug, Clone, Copy)]
pub struct Prices<'a> {
    /// Opening price.
    pub open: &'a str,
    /// Highest price.
    pub high: &'a str,
    /// Lowest price.
    pub low: &'a str,
    /// Closing price.
    pub close: &'a str,
    /// Adjusted close, when the source has one.
    pub adj_close: Option<&'a str>,
}

/// Checks one bar given as text, the rules of [`check`] apart from the payload-wide ones (the
/// requested range, a date twice): the bar to store, or why not.
pub fn fields(
    symbol: &str,
    date: Option<NaiveDate>,
    prices: Prices<'_>,
    volume: &str,
    today: NaiveDate,
) -> Result<Bar, &'static str> {
    let date = date.ok_or("no readable date")?;
    if date > today {
        return Err("the date is in the future");
    }
    if !calendar::is_trading_day(date) {
        return Err("the exchange was closed on that date");
    }
    let price = |text: &str| -> Result<Decimal, &'static str> {
        let p = numeric::fixed(text, numeric::PRICE).map_err(|unfit| match unfit {
            Unfit::NotANumber => "a price is missing or not a number",
            Unfit::TooLarge => "a price is too large to store",
            Unfit::TooPrecise => "a price has more than 6 decimal places",
        })?;
        if p.is_sign_negative() && !p.is_zero() {
            Err("a price is negative")
        } else {
            Ok(p)
        }
    };
    let (open, high, low, close) = (
        price(prices.open)?,
        price(prices.high)?,
        price(prices.low)?,
        price(prices.close)?,
    );
    let adj_close = prices.adj_close.map(price).transpose()?;
    if high < low {
        return Err("high is below low");
    }
    if open < low || open > high {
        return Err("open is outside [low, high]");
    }
    if close < low || close > high {
        return Err("close is outside [low, high]");
    }
    let volume = numeric::whole(volume).map_err(|unfit| match unfit {
        Unfit::NotANumber => "the volume is missing or not a number",
        Unfit::TooLarge => "the volume is too large to store",
        Unfit::TooPrecise => "the volume is not a whole number of shares",
    })?;
    if volume < 0 {
        return Err("the volume is negative");
    }
    Ok(Bar {
        symbol: symbol.to_owned(),
        date,
        open,
        high,
        low,
        close,
        adj_close,
        volume,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn raw(date: &str, o: &str, h: &str, l: &str, c: &str, v: &str) -> RawBar {
        RawBar {
            symbol: "AAPL".to_owned(),
            date: date.parse().ok(),
            open: o.parse().ok(),
            high: h.parse().ok(),
            low: l.parse().ok(),
            close: c.parse().ok(),
            adj_close: None,
            volume: v.parse().ok(),
        }
    }

    fn reasons(raws: Vec<RawBar>) -> Vec<&'static str> {
        check(raws, d("2025-01-01"), d("2025-01-31"), d("2025-01-31"))
            .rejects
            .iter()
            .map(|r| r.reason)
            .collect()
    }

    #[test]
    fn a_sound_bar_passes_unchanged() {
        let checked = check(
            vec![raw(
                "2025-01-10",
                "240.01",
                "240.16",
                "233",
                "236.85",
                "61710900",
            )],
            d("2025-01-01"),
            d("2025-01-31"),
            d("2025-01-31"),
        );
        assert!(checked.rejects.is_empty());
        assert_eq!(checked.bars[0].open.to_string(), "240.01");
        assert_eq!(checked.bars[0].volume, 61_710_900);
    }

    #[test]
    fn each_kind_of_bad_bar_is_rejected_with_its_reason() {
        assert_eq!(
            reasons(vec![
                raw("2025-01-02", "-1", "2", "1", "1.5", "10"),
                raw("2025-01-03", "1", "1", "2", "1", "10"),
                raw("2025-01-06", "3", "2", "1", "1.5", "10"),
                raw("2025-01-07", "1.5", "2", "1", "0.5", "10"),
                raw("2025-01-08", "x", "2", "1", "1.5", "10"),
                raw("bad", "1", "2", "1", "1.5", "10"),
                raw("2025-01-13", "1", "2", "1", "1.5", "10.5"),
                raw("2025-01-14", "1", "2", "1", "1.1234567", "10"),
                raw("2025-01-15", "1", "2", "1e-7", "1.5", "10"),
                raw("2025-01-16", "1", "1e14", "1", "1.5", "10"),
                raw("2025-01-17", "1", "2", "1", "1.5", "-3"),
                raw("2025-01-21", "1", "2", "1", "1.5", "1e19"),
            ]),
            [
                "a price is negative",
                "high is below low",
                "open is outside [low, high]",
                "close is outside [low, high]",
                "a price is missing or not a number",
                "no readable date",
                "the volume is not a whole number of shares",
                "a price has more than 6 decimal places",
                "a price has more than 6 decimal places",
                "a price is too large to store",
                "the volume is negative",
                "the volume is too large to store",
            ]
        );
    }

    #[test]
    fn trailing_zeros_beyond_six_places_round_nothing_and_pass() {
        let checked = check(
            vec![raw(
                "2025-01-10",
                "1.10",
                "2.000000000",
                "1",
                "1.5000000",
                "7.0790813e+07",
            )],
            d("2025-01-01"),
            d("2025-01-31"),
            d("2025-01-31"),
        );
        assert!(checked.rejects.is_empty(), "{:?}", checked.rejects);
        let bar = &checked.bars[0];
        assert_eq!(
            [bar.open, bar.high, bar.close].map(|p| p.to_string()),
            ["1.1", "2", "1.5"]
        );
        assert_eq!(bar.volume, 70_790_813);
    }

    #[test]
    fn a_future_date_and_a_duplicated_date_are_rejected() {
        let checked = check(
            vec![
                raw("2025-01-10", "1", "2", "1", "1.5", "10"),
                raw("2025-01-10", "1", "2", "1", "1.6", "10"),
                raw("2025-02-03", "1", "2", "1", "1.5", "10"),
                raw("2025-01-13", "1", "2", "1", "1.5", "10"),
            ],
            d("2025-01-01"),
            d("2025-02-28"),
            d("2025-01-31"),
        );
        let reasons: Vec<&str> = checked.rejects.iter().map(|r| r.reason).collect();
        assert_eq!(
            reasons,
            [
                "the date appears more than once in the payload",
                "the date appears more than once in the payload",
                "the date is in the future",
            ]
        );
        assert_eq!(checked.bars.len(), 1);
    }

    #[test]
    fn a_bar_dated_on_a_day_the_exchange_was_closed_is_rejected() {
        // Good Friday, Thanksgiving, a Saturday, and a one-off closure.
        let closed = ["2025-04-18", "2025-11-27", "2025-04-19", "2025-01-09"];
        let mut raws: Vec<RawBar> = closed
            .iter()
            .map(|day| raw(day, "1", "2", "1", "1.5", "10"))
            .collect();
        raws.push(raw("2025-04-17", "1", "2", "1", "1.5", "10"));

        let checked = check(raws, d("2025-01-01"), d("2025-12-31"), d("2025-12-31"));

        assert_eq!(checked.bars.len(), 1);
        assert_eq!(checked.bars[0].date, d("2025-04-17"));
        let rejected: Vec<(Option<NaiveDate>, &str)> =
            checked.rejects.iter().map(|r| (r.date, r.reason)).collect();
        assert_eq!(
            rejected,
            closed.map(|day| (Some(d(day)), "the exchange was closed on that date"))
        );
    }

    #[test]
    fn bars_outside_the_requested_range_are_dropped_silently() {
        let checked = check(
            vec![raw("2024-12-31", "1", "2", "1", "1.5", "10")],
            d("2025-01-01"),
            d("2025-01-31"),
            d("2025-01-31"),
        );
        assert!(checked.bars.is_empty() && checked.rejects.is_empty());
    }
}
