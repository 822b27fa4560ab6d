//! Logging: one flat JSON object per line (or human-readable lines for a terminal).
//!
//! A JSON line carries `ts`, `level`, `target`, `message`, the event's own fields, and the fields
//! of every span it happened in, flattened to the top level. That is how every line logged while
//! serving a request carries its `request_id` (see `http::request_context`).

use std::io::Write;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// Installs the global subscriber. `filter` is a validated `LOG_LEVEL`.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry.with(JsonLayer::new(std::io::stdout)).try_init(),
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
}

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

/// A span's fields, kept in the span's extensions until it closes.
struct SpanFields(Map<String, Value>);

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = JsonVisitor::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.0));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
                let mut visitor = JsonVisitor(std::mem::take(fields));
                values.record(&mut visitor);
                *fields = visitor.0;
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "ts".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
        line.insert(
            "level".into(),
            meta.level().as_str().to_ascii_lowercase().into(),
        );
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    line.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut fields = JsonVisitor(line);
        event.record(&mut fields);
        let mut bytes = serde_json::to_vec(&fields.0).unwrap_or_default();
        bytes.push(b'\n');
        // One write per line, so lines from concurrent requests never interleave.
        let _ = self.make_writer.make_writer().write_all(&bytes);
    }
}

/// Collects fields as JSON values, keeping numbers and booleans typed.
#[derive(Default)]
struct JsonVisitor(Map<String, Value>);

impl Visit for JsonVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), error_chain(value).into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// An error and its causes on one line, `outer: inner: root`, each cause once: libraries often
/// repeat their source's text in their own message, and a chain printed naively says
/// everything twice.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    chain_text(std::iter::successors(Some(error), |e| e.source()))
}

/// [`error_chain`] for an `anyhow::Error`, context included.
pub fn anyhow_chain(error: &anyhow::Error) -> String {
    chain_text(error.chain())
}

fn chain_text<'a>(errors: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut text = String::new();
    for error in errors {
        let message = error.to_string();
        if text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn an_event_inside_spans_is_one_flat_json_line_with_the_span_fields() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(buffer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!(
                "request",
                request_id = "abc",
                user_id = tracing::field::Empty
            );
            let _outer = outer.enter();
            outer.record("user_id", "u-1");
            let inner = tracing::info_span!("inner", step = 2_u64);
            let _inner = inner.enter();
            tracing::warn!(status = 503_u64, ok = false, "something happened");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["level"], "warn");
        assert_eq!(line["request_id"], "abc");
        assert_eq!(line["user_id"], "u-1");
        assert_eq!(line["step"], 2);
        assert_eq!(line["status"], 503);
        assert_eq!(line["ok"], false);
        assert_eq!(line["message"], "something happened");
        assert!(line["ts"].as_str().unwrap().ends_with('Z'));
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot connect: {0}")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn an_error_chain_names_each_cause_once() {
        let error = anyhow::Error::new(Outer(std::io::Error::other("refused")))
            .context("migrations failed");

        assert_eq!(
            anyhow_chain(&error),
            "migrations failed: cannot connect: refused"
        );
    }
}
