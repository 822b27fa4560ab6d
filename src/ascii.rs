//! Numbers and dates written into byte buffers as ASCII, without the formatting machinery: for
//! the two writers on the hot path, the JSON log line (`telemetry::json`) and the prices body
//! (`http::prices`).

use chrono::{Datelike, NaiveDate};

/// `value`'s last `width` decimal digits, zero-padded: `padded(out, 7, 2)` writes `07`.
pub fn padded(out: &mut Vec<u8>, mut value: u32, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// `YYYY-MM-DD`, as chrono writes it (years outside 0-9999 through chrono itself).
pub fn date(out: &mut Vec<u8>, date: NaiveDate) {
    let Ok(year @ 0..=9999) = u32::try_from(date.year()) else {
        out.extend_from_slice(date.to_string().as_bytes());
        return;
    };
    padded(out, year, 4);
    out.push(b'-');
    padded(out, date.month(), 2);
    out.push(b'-');
    padded(out, date.day(), 2);
}

/// An integer in decimal.
pub fn integer(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = b"x".to_vec();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_and_dates_are_written_as_the_standard_library_and_chrono_write_them() {
        assert_eq!(written(|o| padded(o, 7, 2)), "x07");
        assert_eq!(written(|o| padded(o, 2026, 4)), "x2026");
        assert_eq!(written(|o| padded(o, 0, 3)), "x000");
        assert_eq!(written(|o| integer(o, i64::MIN)), format!("x{}", i64::MIN));
        assert_eq!(written(|o| integer(o, u64::MAX)), format!("x{}", u64::MAX));
        for day in ["2025-01-02", "0999-12-31", "0000-01-01", "9999-12-31"] {
            let parsed: NaiveDate = day.parse().unwrap();
            assert_eq!(written(|o| date(o, parsed)), format!("x{day}"));
        }
        for far in [NaiveDate::MIN, NaiveDate::MAX] {
            assert_eq!(written(|o| date(o, far)), format!("x{far}"));
        }
    }
}
