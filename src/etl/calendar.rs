//! The NYSE trading calendar: which days have a daily bar, and which is the latest one whose
//! close has already happened in New York.
//!
//! Full-day closures only: early closes (13:00 on the eve of some holidays) still produce a bar.
//! The rules are the exchange's since 2000; days before that are treated as weekdays minus the
//! fixed-rule holidays, which is good enough for a backfill's bounds.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::America::New_York;

/// The regular close, New York time. A day is "completed" once this has passed there.
const CLOSE: NaiveTime = match NaiveTime::from_hms_opt(16, 0, 0) {
    Some(t) => t,
    None => unreachable!(),
};

/// One-off full-day closures (national mourning, storms, September 11).
const SPECIAL_CLOSURES: &[(i32, u32, u32)] = &[
    (2001, 9, 11),
    (2001, 9, 12),
    (2001, 9, 13),
    (2001, 9, 14),
    (2004, 6, 11),  // President Reagan's funeral
    (2007, 1, 2),   // President Ford's funeral
    (2012, 10, 29), // Hurricane Sandy
    (2012, 10, 30),
    (2018, 12, 5), // President George H. W. Bush's funeral
    (2025, 1, 9),  // President Carter's funeral
];

/// The date in New York at instant `now`.
pub fn new_york_date(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&New_York).date_naive()
}

/// Whether the exchange trades (for at least part of) `date`.
pub fn is_trading_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !is_holiday(date)
}

/// The latest trading day whose 16:00 New York close is at or before `now`.
pub fn latest_completed_trading_day(now: DateTime<Utc>) -> NaiveDate {
    let local = now.with_timezone(&New_York);
    let mut date = local.date_naive();
    if local.time() < CLOSE {
        date = date.pred_opt().unwrap_or(date);
    }
    previous_or_same_trading_day(date)
}

/// `date` if it is a trading day, else the trading day before it.
pub fn previous_or_same_trading_day(mut date: NaiveDate) -> NaiveDate {
    while !is_trading_day(date) {
        match date.pred_opt() {
            Some(d) => date = d,
            None => break,
        }
    }
    date
}

/// The trading days from `from` to `to`, both included, in order.
pub fn trading_days(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    from.iter_days()
        .take_while(move |d| *d <= to)
        .filter(|d| is_trading_day(*d))
}

/// Whether `date` is an exchange holiday (as observed) or a one-off closure.
pub fn is_holiday(date: NaiveDate) -> bool {
    let year = date.year();
    SPECIAL_CLOSURES.contains(&(year, date.month(), date.day())) || holidays(year).contains(&date)
}

/// The observed full-day holidays of `year`.
pub fn holidays(year: i32) -> Vec<NaiveDate> {
    let mut days = Vec::with_capacity(10);
    let ymd = |m, d| NaiveDate::from_ymd_opt(year, m, d);
    // New Year's Day: Sunday → Monday; Saturday → not observed (NYSE Rule 7.2: the Friday
    // before would be the last trading day of the prior year, which the exchange keeps open).
    if let Some(new_year) = ymd(1, 1) {
        match new_year.weekday() {
            Weekday::Sat => {}
            Weekday::Sun => days.extend(new_year.succ_opt()),
            _ => days.push(new_year),
        }
    }
    days.extend(nth_weekday(year, 1, Weekday::Mon, 3)); // Martin Luther King Jr. Day
    days.extend(nth_weekday(year, 2, Weekday::Mon, 3)); // Washington's Birthday
    days.extend(easter_sunday(year).map(|easter| easter - Duration::days(2))); // Good Friday
    days.extend(last_weekday(year, 5, Weekday::Mon)); // Memorial Day
    if year >= 2022 {
        days.extend(ymd(6, 19).map(observed)); // Juneteenth, a market holiday since 2022
    }
    days.extend(ymd(7, 4).map(observed)); // Independence Day
    days.extend(nth_weekday(year, 9, Weekday::Mon, 1)); // Labor Day
    days.extend(nth_weekday(year, 11, Weekday::Thu, 4)); // Thanksgiving
    days.extend(ymd(12, 25).map(observed)); // Christmas
    days
}

/// A fixed-date holiday on a Saturday is observed on the Friday before, on a Sunday on the
/// Monday after.
fn observed(date: NaiveDate) -> NaiveDate {
    match date.weekday() {
        Weekday::Sat => date.pred_opt().unwrap_or(date),
        Weekday::Sun => date.succ_opt().unwrap_or(date),
        _ => date,
    }
}

/// The `n`th `weekday` of `month` (n from 1).
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

/// The last `weekday` of `month`.
fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    nth_weekday(year, month, weekday, 5).or_else(|| nth_weekday(year, month, weekday, 4))
}

/// Easter Sunday in the Gregorian calendar (the anonymous "Meeus/Jones/Butcher" algorithm).
fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn holidays_as_text(year: i32) -> Vec<String> {
        let mut days = holidays(year);
        days.sort();
        days.iter().map(NaiveDate::to_string).collect()
    }

    #[test]
    fn the_2024_to_2026_holidays_match_the_exchange_calendar() {
        assert_eq!(
            holidays_as_text(2024),
            [
                "2024-01-01",
                "2024-01-15",
                "2024-02-19",
                "2024-03-29",
                "2024-05-27",
                "2024-06-19",
                "2024-07-04",
                "2024-09-02",
                "2024-11-28",
                "2024-12-25"
            ]
        );
        assert_eq!(
            holidays_as_text(2025),
            [
                "2025-01-01",
                "2025-01-20",
                "2025-02-17",
                "2025-04-18",
                "2025-05-26",
                "2025-06-19",
                "2025-07-04",
                "2025-09-01",
                "2025-11-27",
                "2025-12-25"
            ]
        );
        assert_eq!(
            holidays_as_text(2026),
            [
                "2026-01-01",
                "2026-01-19",
                "2026-02-16",
                "2026-04-03",
                "2026-05-25",
                "2026-06-19",
                "2026-07-03",
                "2026-09-07",
                "2026-11-26",
                "2026-12-25"
            ]
        );
    }

    #[test]
    fn fixed_holidays_on_a_weekend_are_observed_on_the_nearest_weekday() {
        // Independence Day 2026 is a Saturday: closed Friday 3 July, not Monday.
        assert!(is_holiday(d("2026-07-03")));
        assert!(is_trading_day(d("2026-07-06")));
        // Juneteenth 2022 was a Sunday: closed Monday 20 June.
        assert!(is_holiday(d("2022-06-20")));
        // Christmas 2022 was a Sunday: closed Monday 26 December.
        assert!(is_holiday(d("2022-12-26")));
        // Juneteenth was not a market holiday before 2022.
        assert!(is_trading_day(d("2021-06-18")));
    }

    #[test]
    fn new_year_on_a_saturday_is_not_observed_on_the_friday_before() {
        assert!(is_trading_day(d("2021-12-31")));
        assert!(!is_trading_day(d("2022-01-01")));
        // On a Sunday it moves to Monday.
        assert!(is_holiday(d("2023-01-02")));
    }

    #[test]
    fn one_off_closures_are_not_trading_days() {
        assert!(!is_trading_day(d("2025-01-09")));
        assert!(!is_trading_day(d("2018-12-05")));
        assert!(is_trading_day(d("2025-01-10")));
    }

    #[test]
    fn trading_days_skip_weekends_and_holidays() {
        let days: Vec<String> = trading_days(d("2025-01-08"), d("2025-01-14"))
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            days,
            ["2025-01-08", "2025-01-10", "2025-01-13", "2025-01-14"]
        );
    }

    #[test]
    fn the_latest_completed_day_is_today_only_after_the_close_in_new_york() {
        // 2025-03-11 (a Tuesday, after the DST change): the close is 20:00 UTC.
        let before = Utc.with_ymd_and_hms(2025, 3, 11, 19, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2025, 3, 11, 20, 0, 0).unwrap();
        assert_eq!(latest_completed_trading_day(before), d("2025-03-10"));
        assert_eq!(latest_completed_trading_day(after), d("2025-03-11"));
        // In winter the close is 21:00 UTC.
        let winter = Utc.with_ymd_and_hms(2025, 1, 14, 20, 30, 0).unwrap();
        assert_eq!(latest_completed_trading_day(winter), d("2025-01-13"));
    }

    #[test]
    fn the_latest_completed_day_skips_a_weekend_and_a_holiday() {
        // Tuesday 2025-01-21, 03:00 UTC is still Monday evening in New York (MLK Day), so the
        // latest completed day is Friday 17 January.
        let now = Utc.with_ymd_and_hms(2025, 1, 21, 3, 0, 0).unwrap();
        assert_eq!(latest_completed_trading_day(now), d("2025-01-17"));
        // Thanksgiving 2026 morning: Wednesday the 25th.
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 15, 0, 0).unwrap();
        assert_eq!(latest_completed_trading_day(now), d("2026-11-25"));
    }

    #[test]
    fn new_york_dating_differs_from_utc_in_the_evening() {
        let late = Utc.with_ymd_and_hms(2025, 11, 3, 2, 30, 0).unwrap();
        assert_eq!(new_york_date(late), d("2025-11-02"));
    }
}
