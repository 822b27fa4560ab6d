//! Logging: one flat JSON object per line (or human-readable lines for a terminal).
//!
//! A JSON line carries `ts`, `level`, `target`, `message`, the event's own fields, and the fields
//! of the task's log context ([`context`]), all at the top level ([`json`]). That is how every
//! line logged while serving a request carries its `request_id` (see `http::request_context`).
//! Spans are not logged.

pub mod context;
pub mod json;
pub mod stdout;

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `filter` is a validated `LOG_LEVEL`.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry
            .with(json::JsonLayer::new(stdout::BatchedStdout))
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(WithContext(Format::default()))
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}

/// tracing's human-readable line, followed by the task's log context (`request_id=...`), which
/// the default format cannot see. Without colours: the line is formatted into a string first.
struct WithContext(Format);

impl<S, N> FormatEvent<S, N> for WithContext
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(line.trim_end_matches('\n'))?;
        let mut result = Ok(());
        context::for_each(|key, value| {
            result = result.and_then(|()| write!(writer, " {key}={value}"));
        });
        result?;
        writeln!(writer)
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

/// What the logging tests write to.
#[cfg(test)]
mod testing {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    /// A shared in-memory writer: clones append to the same bytes.
    #[derive(Clone, Default)]
    pub struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        /// Everything written so far.
        pub fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl std::io::Write for Buffer {
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
}

#[cfg(test)]
mod tests {
    use super::testing::Buffer;
    use super::*;

    #[test]
    fn a_pretty_line_ends_with_the_log_context() {
        let buffer = Buffer::default();
        let layer = tracing_subscriber::fmt::layer()
            .event_format(WithContext(Format::default()))
            .with_writer(buffer.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let fields = context::Fields::new(vec![("request_id", "r-9".to_owned())]);
            runtime.block_on(context::scope(fields, async {
                tracing::warn!(status = 503_u64, "not ready");
            }));
        });
        let text = buffer.text();
        assert!(text.ends_with("status=503 request_id=r-9\n"), "{text:?}");
        assert!(
            text.contains("WARN") && text.contains("not ready"),
            "{text:?}"
        );
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
