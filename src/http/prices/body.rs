//! The body of `GET /prices/{symbol}`, written straight from the rows.
//!
//! A year of bars is 260 objects of seven fields. Through serde (each row decoded into a struct
//! of `String`s, then every key and value escaped one call at a time) the body cost more CPU
//! than the query; here each field is copied from its row into the body once. The bytes are
//! those `serde_json` writes for [`Bars`](super::Bars): a test holds the two together.

use chrono::NaiveDate;

use crate::ascii;
use crate::db::prices::BarText;

/// `{"symbol":"…","bars":[{"date":"…","open":"…",…},…]}`.
pub fn bars_json(symbol: &str, bars: &[BarText<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + bars.len() * 150);
    out.extend_from_slice(b"{\"symbol\":");
    string(&mut out, symbol.as_bytes());
    out.extend_from_slice(b",\"bars\":[");
    for (i, bar) in bars.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"date\":\"");
        ascii::date(&mut out, bar.date);
        out.extend_from_slice(b"\",\"open\":");
        string(&mut out, bar.open);
        out.extend_from_slice(b",\"high\":");
        string(&mut out, bar.high);
        out.extend_from_slice(b",\"low\":");
        string(&mut out, bar.low);
        out.extend_from_slice(b",\"close\":");
        string(&mut out, bar.close);
        out.extend_from_slice(b",\"adj_close\":");
        match bar.adj_close {
            Some(value) => string(&mut out, value),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"volume\":");
        ascii::integer(&mut out, bar.volume);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// A JSON string. Prices and tickers are plain ASCII that needs no escaping; anything else
/// goes through `serde_json` (invalid UTF-8 replaced, which text from Postgres never is).
fn string(out: &mut Vec<u8>, value: &[u8]) {
    if value
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push(b'"');
        out.extend_from_slice(value);
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(value));
    }
}

/// `date` as a JSON string through serde: the `Bar` type's own field serializer.
pub fn serialize_date<S: serde::Serializer>(
    value: &NaiveDate,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut text = Vec::with_capacity(10);
    ascii::date(&mut text, *value);
    serializer.serialize_str(std::str::from_utf8(&text).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::super::{Bar, Bars};
    use super::*;

    fn bar<'a>(day: &str, open: &'a str, adj_close: Option<&'a str>, volume: i64) -> BarText<'a> {
        BarText {
            date: day.parse().unwrap(),
            open: open.as_bytes(),
            high: b"190.000001",
            low: b"0.000000",
            close: b"187.442500",
            adj_close: adj_close.map(str::as_bytes),
            volume,
            updated_at_micros: 0,
        }
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn the_body_is_what_serde_json_writes_for_bars() {
        let bars = [
            bar("2025-01-02", "187.442500", None, 1000),
            bar("0999-12-31", "1.000000", Some("2.500000"), i64::MAX),
            bar("2025-01-06", "odd \"text\" \\ \n é", Some("1"), 0),
        ];
        let typed = Bars {
            symbol: "BRK.B".to_owned(),
            bars: bars
                .iter()
                .map(|b| Bar {
                    date: b.date,
                    open: text(b.open),
                    high: text(b.high),
                    low: text(b.low),
                    close: text(b.close),
                    adj_close: b.adj_close.map(text),
                    volume: b.volume,
                })
                .collect(),
        };

        let ours = bars_json("BRK.B", &bars);

        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string(&typed).unwrap()
        );
        assert_eq!(bars_json("A", &[]), br#"{"symbol":"A","bars":[]}"#);
    }
}
