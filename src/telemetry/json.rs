//! The JSON log layer: each event as one flat JSON object on one line, written with one call.
//!
//! Key order: `ts`, `level`, `target`, the event's fields as written (`message` among them), then
//! the fields of the task's log context ([`super::context`]: a request's `request_id`,
//! `method`, `path`, `user_id`). A key appears once: an event's field hides a context field of
//! the same name.
//!
//! Every request writes a line, so this is on the hot path: a line is encoded straight into a
//! per-thread buffer, without an intermediate map of values, and spans are not recorded at all
//! (the layer turns them off: the context carries what a request span would have).

use std::cell::RefCell;
use std::fmt;
use std::io::Write;

use chrono::{Timelike, Utc};
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use super::{context, error_chain};
use crate::ascii;

/// A layer writing each event as one flat JSON object per line to `W`.
pub struct JsonLayer<W> {
    make_writer: W,
}

impl<W> JsonLayer<W> {
    /// Writes to whatever `make_writer` makes (stdout in production, a buffer in tests).
    pub fn new(make_writer: W) -> Self {
        Self { make_writer }
    }
}

/// What one thread reuses from line to line: the line, and the event's keys in it.
#[derive(Default)]
struct Scratch {
    line: Vec<u8>,
    keys: Vec<&'static str>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber,
    W: for<'a> MakeWriter<'a> + 'static,
{
    /// Spans are off: their fields would not be written, and each costs a registry slot.
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.is_span() {
            Interest::never()
        } else {
            Interest::always()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        !metadata.is_span()
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let write = |scratch: &mut Scratch| {
            scratch.line.clear();
            scratch.keys.clear();
            let mut line = Line(scratch);
            line.head(event.metadata().level().as_str(), event.metadata().target());
            event.record(&mut line);
            context::for_each(|key, value| line.context(key, value));
            scratch.line.extend_from_slice(b"}\n");
            // One write per line, so lines from concurrent requests never interleave.
            let _ = self.make_writer.make_writer().write_all(&scratch.line);
        };
        // A writer that logs would find the buffer taken: it gets a fresh one.
        let _ = SCRATCH.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => write(&mut scratch),
            Err(_) => write(&mut Scratch::default()),
        });
    }
}

/// Encodes one line into a [`Scratch`].
struct Line<'a>(&'a mut Scratch);

impl Line<'_> {
    fn head(&mut self, level: &str, target: &str) {
        let out = &mut self.0.line;
        out.extend_from_slice(b"{\"ts\":\"");
        timestamp(out);
        out.extend_from_slice(b"\",\"level\":\"");
        for b in level.bytes() {
            out.push(b.to_ascii_lowercase());
        }
        out.extend_from_slice(b"\",\"target\":");
        string(out, target);
    }

    /// Starts `"key":` for an event field, unless the head has the key. Keys are field names,
    /// Rust identifiers: nothing in them needs escaping.
    fn field(&mut self, key: &'static str) -> bool {
        if matches!(key, "ts" | "level" | "target") {
            return false;
        }
        self.0.keys.push(key);
        self.key(key);
        true
    }

    /// Writes a context field, unless an event field has its key.
    fn context(&mut self, key: &'static str, value: &str) {
        if !matches!(key, "ts" | "level" | "target") && !self.0.keys.contains(&key) {
            self.key(key);
            string(&mut self.0.line, value);
        }
    }

    fn key(&mut self, key: &str) {
        let out = &mut self.0.line;
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
    }
}

impl Visit for Line<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.field(field.name()) {
            number_f64(&mut self.0.line, value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.field(field.name()) {
            ascii::integer(&mut self.0.line, value);
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.field(field.name()) {
            ascii::integer(&mut self.0.line, value);
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.field(field.name()) {
            let literal: &[u8] = if value { b"true" } else { b"false" };
            self.0.line.extend_from_slice(literal);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.field(field.name()) {
            string(&mut self.0.line, value);
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.field(field.name()) {
            string(&mut self.0.line, &error_chain(value));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.field(field.name()) {
            debug_string(&mut self.0.line, value);
        }
    }
}

/// `2026-01-02T03:04:05.678Z`: UTC, milliseconds.
fn timestamp(out: &mut Vec<u8>) {
    let now = Utc::now();
    ascii::date(out, now.date_naive());
    out.push(b'T');
    ascii::padded(out, now.hour(), 2);
    out.push(b':');
    ascii::padded(out, now.minute(), 2);
    out.push(b':');
    ascii::padded(out, now.second(), 2);
    out.push(b'.');
    ascii::padded(out, now.timestamp_subsec_millis().min(999), 3);
    out.push(b'Z');
}

/// A finite float as JSON's number; NaN and the infinities, which JSON lacks, as `null`.
fn number_f64(out: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        let mut digits = ryu::Buffer::new();
        out.extend_from_slice(digits.format_finite(value).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// `value` as a JSON string.
fn string(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    escape_into(out, value);
    out.push(b'"');
}

/// `value`'s `Debug` text as a JSON string, escaped as it is formatted (no interim `String`).
fn debug_string(out: &mut Vec<u8>, value: &dyn fmt::Debug) {
    struct Escaping<'a>(&'a mut Vec<u8>);
    impl fmt::Write for Escaping<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            escape_into(self.0, s);
            Ok(())
        }
    }
    out.push(b'"');
    let _ = fmt::write(&mut Escaping(out), format_args!("{value:?}"));
    out.push(b'"');
}

/// Which bytes JSON strings must escape: the quote, the backslash and control characters
/// (DEL too, which some log viewers mangle).
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[0x7f] = true;
    table
};

/// `value` with JSON's escapes.
fn escape_into(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !NEEDS_ESCAPE[b as usize] {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::super::testing::Buffer;
    use super::*;
    use serde_json::Value;
    use tracing_subscriber::layer::SubscriberExt;

    fn lines_of(log: impl FnOnce()) -> Vec<String> {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(buffer.clone()));
        tracing::subscriber::with_default(subscriber, log);
        let text = buffer.text();
        assert!(text.ends_with('\n'), "{text:?}");
        text.lines().map(str::to_owned).collect()
    }

    /// Runs `log` inside a log context of `fields`, on a runtime of its own.
    fn in_context(fields: Vec<(&'static str, String)>, log: impl FnOnce() + Send) -> Vec<String> {
        lines_of(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(context::scope(context::Fields::new(fields), async {
                log()
            }));
        })
    }

    #[test]
    fn an_event_in_a_log_context_is_one_flat_json_line_with_the_context_fields() {
        let lines = in_context(
            vec![("request_id", "abc".to_owned()), ("path", "/x".to_owned())],
            || {
                context::record("user_id", "u-1".to_owned());
                tracing::warn!(
                    status = 503_u64,
                    ok = false,
                    code = -2_i64,
                    "something happened"
                );
            },
        );
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(line["level"], "warn");
        assert_eq!(line["request_id"], "abc");
        assert_eq!(line["path"], "/x");
        assert_eq!(line["user_id"], "u-1");
        assert_eq!(line["status"], 503);
        assert_eq!(line["code"], -2);
        assert_eq!(line["ok"], false);
        assert_eq!(line["message"], "something happened");
        let ts = line["ts"].as_str().unwrap();
        let parsed = chrono::DateTime::parse_from_rfc3339(ts).unwrap();
        assert!(
            (Utc::now() - parsed.to_utc()).num_seconds().abs() < 5,
            "{ts}"
        );
        assert_eq!(ts.len(), "2026-01-02T03:04:05.678Z".len(), "{ts}");
    }

    #[test]
    fn keys_come_in_order_and_once_with_the_event_value_first() {
        let lines = in_context(
            vec![
                ("attempt", "context".to_owned()),
                ("request_id", "r-1".to_owned()),
            ],
            || tracing::info!(attempt = 2_i64, duration_ms = 1.25, "retrying"),
        );
        let line = &lines[0];
        let position = |key: &str| line.find(&format!("\"{key}\":")).unwrap();
        assert!(position("ts") < position("level"), "{line}");
        assert!(position("level") < position("target"), "{line}");
        assert!(position("target") < position("message"), "{line}");
        assert!(position("message") < position("request_id"), "{line}");
        let value: Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["attempt"], 2, "the event's own field wins: {line}");
        assert_eq!(value["duration_ms"], 1.25);
        assert_eq!(value["request_id"], "r-1");
        for key in ["attempt", "request_id", "message"] {
            assert_eq!(
                line.matches(&format!("\"{key}\"")).count(),
                1,
                "{key}: {line}"
            );
        }
    }

    #[test]
    fn spans_are_off_and_add_nothing_to_lines() {
        let lines = lines_of(|| {
            let span = tracing::info_span!("request", request_id = "from-a-span");
            assert!(span.is_disabled());
            let _entered = span.enter();
            tracing::info!("inside");
        });
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].contains("from-a-span"), "{}", lines[0]);
    }

    #[test]
    fn strings_are_escaped_and_odd_numbers_are_null() {
        let nasty = "quote \" backslash \\ newline \n tab \t bell \u{7} del \u{7f} é 🙂";
        let lines = lines_of(|| {
            tracing::info!(text = nasty, ratio = f64::NAN, big = u64::MAX, debug = ?nasty, "{nasty}");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(line["text"], nasty);
        assert_eq!(line["message"], nasty);
        assert_eq!(line["debug"], format!("{nasty:?}"));
        assert_eq!(line["ratio"], Value::Null);
        assert_eq!(line["big"], u64::MAX);
    }
}
