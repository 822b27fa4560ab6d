//! Catching up: a run without dates asks, for each symbol, every trading day since its last
//! stored bar, so a run that failed, was skipped or was cancelled is repaired by the next one,
//! and a newly tracked symbol gets its recent history.
//!
//! The look-back window (`ETL_LOOKBACK_DAYS` calendar days ending with the latest completed
//! trading day) bounds how far back that goes: a symbol with no bar inside it starts at the
//! window's first trading day, and an older gap is left to a backfill (`--from/--to`). The latest
//! completed day itself is always asked again, so a provider's correction of the last bar is
//! picked up and a second run the same evening changes nothing.

use std::collections::HashMap;

use chrono::{Days, NaiveDate};
use sqlx::PgPool;

use super::calendar;

/// The first day of the look-back window of `lookback_days` calendar days ending with `latest`.
pub fn window_start(latest: NaiveDate, lookback_days: u32) -> NaiveDate {
    latest
        .checked_sub_days(Days::new(u64::from(lookback_days.max(1) - 1)))
        .unwrap_or(latest)
}

/// The first trading day to ask for each of `symbols`, given the date of each one's last stored
/// bar in the window (`last`; a symbol missing from it has none there).
pub fn starts(
    symbols: &[String],
    last: &HashMap<String, NaiveDate>,
    latest: NaiveDate,
    lookback_days: u32,
) -> HashMap<String, NaiveDate> {
    let floor = window_start(latest, lookback_days);
    symbols
        .iter()
        .map(|symbol| {
            let after_last = last
                .get(symbol)
                .and_then(|day| day.succ_opt())
                .unwrap_or(floor)
                .max(floor);
            let start = calendar::trading_days(after_last.min(latest), latest)
                .next()
                .unwrap_or(latest);
            (symbol.clone(), start)
        })
        .collect()
}

/// The date of the last stored bar of each of `symbols` from `since` on (older bars are outside
/// the window and would not change the answer), not counting the synthetic bars of
/// `seed --demo`: those are placeholders until a provider's bars replace them, so a symbol that
/// has only demo bars is caught up like one with none. One index range per symbol, at most a
/// window's worth of rows each (the source is read from the heap: it is not in the key).
pub async fn last_stored(
    db: &PgPool,
    symbols: &[String],
    since: NaiveDate,
) -> Result<HashMap<String, NaiveDate>, sqlx::Error> {
    crate::db::prices::last_stored(db, symbols, since, crate::domain::DEMO_SOURCE).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn symbols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_window_counts_calendar_days_back_including_the_latest_day() {
        assert_eq!(window_start(d("2025-01-14"), 30), d("2024-12-16"));
        assert_eq!(window_start(d("2025-01-14"), 1), d("2025-01-14"));
    }

    #[test]
    fn each_symbol_starts_on_the_trading_day_after_its_last_bar_within_the_window() {
        let last = HashMap::from([
            // Friday: the next trading day is Monday.
            ("BEHIND".to_owned(), d("2025-01-10")),
            // Wednesday 8th: the 9th was a closure (President Carter's funeral).
            ("CLOSURE".to_owned(), d("2025-01-08")),
            ("CURRENT".to_owned(), d("2025-01-14")),
        ]);
        let starts = starts(
            &symbols(&["BEHIND", "CLOSURE", "CURRENT", "NEW"]),
            &last,
            d("2025-01-14"),
            30,
        );

        assert_eq!(starts["BEHIND"], d("2025-01-13"));
        assert_eq!(starts["CLOSURE"], d("2025-01-10"));
        // Up to date: the latest day is asked again.
        assert_eq!(starts["CURRENT"], d("2025-01-14"));
        // No bar in the window: its first trading day (Monday 16 December).
        assert_eq!(starts["NEW"], d("2024-12-16"));
    }

    #[test]
    fn a_window_starting_on_a_holiday_starts_on_the_next_trading_day() {
        // 2024-12-25 is Christmas; the 26th is the first trading day after it.
        let starts = starts(&symbols(&["NEW"]), &HashMap::new(), d("2024-12-31"), 7);
        assert_eq!(starts["NEW"], d("2024-12-26"));
    }
}
