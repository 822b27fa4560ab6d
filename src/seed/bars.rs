//! Synthetic daily bars for the demo symbols (`source = 'demo'`), so a deployment without
//! provider keys still shows prices, ETags and valued portfolios.
//!
//! These are not market data. Each bar is a pure function of its symbol and date: a walk in
//! integer arithmetic (no floating point, so every platform computes the same digits) that
//! starts on a fixed day, [`ANCHOR`], and reverts towards a slowly rising level. A later seed
//! therefore writes the same values for the days an earlier one wrote, and only adds new days.
//!
//! Demo bars never replace a stored bar (`ON CONFLICT DO NOTHING`), while any provider's bar
//! replaces a demo bar (the ETL's upsert), and the ETL's catch-up ignores them
//! ([`crate::etl::catchup::last_stored`]), so real data loads over them.

use chrono::{DateTime, Days, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::db::prices::write::{self, Columns};
use crate::etl::calendar;
use crate::etl::validate::Bar;

use super::{DemoSymbol, DEMO_SYMBOLS};

/// The value of `daily_prices.source` for these bars.
pub use crate::domain::DEMO_SOURCE as SOURCE;

/// The first day of every walk: bars of a day depend on nothing but the days since this one.
const ANCHOR: NaiveDate = match NaiveDate::from_ymd_opt(2020, 1, 2) {
    Some(day) => day,
    None => unreachable!(),
};

/// Calendar days of history a seed writes, ending with the latest completed trading day.
pub const HISTORY_DAYS: u64 = 365;

/// Prices are kept in ten-thousandths of a dollar while walking, and stored in cents.
const SCALE: i128 = 10_000;
/// Parts per million.
const PPM: i128 = 1_000_000;

/// SplitMix64: a well-mixed 64-bit value from any 64-bit input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of the symbol: its walk's seed.
fn seed_of(symbol: &str) -> u64 {
    symbol.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// A value in `-spread..=spread` drawn for (seed, day, stream).
fn draw(seed: u64, day: u64, stream: u64, spread: i128) -> i128 {
    let r = mix(seed ^ mix(day.wrapping_mul(8).wrapping_add(stream)));
    i128::from(r % (2 * spread as u64 + 1)) - spread
}

/// A price in ten-thousandths rounded to cents, as a decimal.
fn cents(price: i128) -> Decimal {
    let cents = (price + SCALE / 200) / (SCALE / 100);
    Decimal::new(i64::try_from(cents).unwrap_or(i64::MAX), 2)
}

/// The bars of `symbol` on every trading day from `from` to `to`: a walk from [`ANCHOR`], of
/// which only those days are kept.
fn walk(symbol: &DemoSymbol, from: NaiveDate, to: NaiveDate) -> Vec<Bar> {
    let seed = seed_of(symbol.symbol);
    let volume = symbol.volume;
    let base = i128::from(symbol.level) * SCALE;
    let mut close = base;
    let mut bars = Vec::new();
    for date in calendar::trading_days(ANCHOR, to) {
        let day = u64::try_from((date - ANCHOR).num_days()).unwrap_or(0);
        // The level rises 12% a year (simple, not compounded); the price reverts 3% of its gap
        // to the level a day, plus a move of up to ±2.5%.
        let target = base + base * i128::from(day) * 12 / (100 * 365);
        let reversion = (target - close) * PPM * 3 / 100 / close.max(1);
        let open = close + close * draw(seed, day, 0, 6_000) / PPM;
        close = (close + close * (draw(seed, day, 1, 25_000) + reversion) / PPM).max(SCALE);
        if date < from {
            continue;
        }
        let top = open.max(close);
        let bottom = open.min(close);
        let high = top + top * (draw(seed, day, 2, 6_000) + 6_000) / PPM;
        let low = bottom - bottom * (draw(seed, day, 3, 6_000) + 6_000) / PPM;
        let shares = i128::from(volume) * (PPM + draw(seed, day, 4, 400_000)) / PPM;
        bars.push(Bar {
            symbol: symbol.symbol.to_owned(),
            date,
            open: cents(open),
            high: cents(high),
            low: cents(low),
            close: cents(close),
            adj_close: None,
            volume: i64::try_from(shares).unwrap_or(volume),
        });
    }
    bars
}

/// The demo bars of every demo symbol on the trading days from `from` to `to`.
pub fn bars(from: NaiveDate, to: NaiveDate) -> Vec<Bar> {
    DEMO_SYMBOLS
        .iter()
        .flat_map(|symbol| walk(symbol, from, to))
        .collect()
}

/// The days a seed at instant `now` covers: [`HISTORY_DAYS`] calendar days ending with the
/// latest completed trading day.
pub fn window(now: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let to = calendar::latest_completed_trading_day(now);
    let from = to
        .checked_sub_days(Days::new(HISTORY_DAYS - 1))
        .unwrap_or(to)
        .max(ANCHOR);
    (from, to)
}

/// Writes the demo bars of the window ending at `now` where no bar is stored yet; how many were
/// written. A stored bar, a provider's or an earlier seed's, is left exactly as it is.
pub async fn write(db: &PgPool, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let (from, to) = window(now);
    let bars = bars(from, to);
    let columns = Columns::of(bars.iter().map(|bar| (bar, SOURCE)));
    write::insert_missing(db, &columns).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etl::provider::RawBar;
    use crate::etl::validate;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_year_of_bars_covers_every_trading_day_of_every_demo_symbol_and_passes_validation() {
        let (from, to) = (d("2025-01-02"), d("2025-12-31"));
        let bars = bars(from, to);

        let days = calendar::trading_days(from, to).count();
        assert_eq!(bars.len(), days * DEMO_SYMBOLS.len());
        let raws: Vec<RawBar> = bars
            .iter()
            .map(|b| RawBar {
                symbol: b.symbol.clone(),
                date: Some(b.date),
                open: Some(b.open.to_string().parse().unwrap()),
                high: Some(b.high.to_string().parse().unwrap()),
                low: Some(b.low.to_string().parse().unwrap()),
                close: Some(b.close.to_string().parse().unwrap()),
                adj_close: None,
                volume: Some(b.volume.to_string().parse().unwrap()),
            })
            .collect();
        let checked = validate::check(raws, from, to, to);
        assert!(checked.rejects.is_empty(), "{:?}", checked.rejects.first());
        assert_eq!(checked.bars, bars);
    }

    #[test]
    fn a_days_bar_is_the_same_whatever_window_it_was_written_in() {
        let early = bars(d("2024-06-03"), d("2025-06-02"));
        let late = bars(d("2025-01-02"), d("2026-01-02"));

        let overlap: Vec<&Bar> = early.iter().filter(|b| b.date >= d("2025-01-02")).collect();
        let same: Vec<&Bar> = late.iter().filter(|b| b.date <= d("2025-06-02")).collect();
        assert!(!overlap.is_empty());
        assert_eq!(overlap, same);
    }

    #[test]
    fn the_prices_move_and_stay_near_their_level() {
        let bars = bars(d("2025-01-02"), d("2025-12-31"));
        let aapl: Vec<&Bar> = bars.iter().filter(|b| b.symbol == "AAPL").collect();
        let closes: Vec<Decimal> = aapl.iter().map(|b| b.close).collect();
        let (min, max) = (closes.iter().min().unwrap(), closes.iter().max().unwrap());
        // AAPL's level in 2025 is 75 × (1 + 0.12 × 5.5 years) ≈ 125 dollars.
        assert!(
            *min > Decimal::from(60) && *max < Decimal::from(250),
            "{min}..{max}"
        );
        assert!(max > min);
        let distinct: std::collections::HashSet<&Decimal> = closes.iter().collect();
        assert!(distinct.len() > closes.len() / 2);
    }

    #[test]
    fn the_window_is_a_year_ending_with_the_latest_completed_trading_day() {
        use chrono::TimeZone;
        // Wednesday 2025-01-15, noon in New York.
        let now = Utc.with_ymd_and_hms(2025, 1, 15, 17, 0, 0).unwrap();
        assert_eq!(window(now), (d("2024-01-16"), d("2025-01-14")));
    }
}
