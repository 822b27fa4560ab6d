//! Log lines to stdout, batched per runtime worker thread.
//!
//! Every request writes an access line. Written one by one, each line takes the process-wide
//! stdout lock around a system call, and two workers writing at once queue on that lock in the
//! kernel: under load that cost more than serving `/health` itself. So a worker thread keeps
//! its lines in a buffer of its own and writes them in one call when the buffer passes
//! [`FLUSH_AT`] bytes, when the worker runs out of work and parks (the runtime calls
//! [`flush_worker`]), or when the thread exits. An idle server therefore writes a request's
//! line as soon as the request is done; a busy one, a few dozen lines at a time. Lines stay
//! whole (each batch is written under the stdout lock) and each carries its own timestamp;
//! lines of different workers may reach stdout a batch apart.
//!
//! Threads that are not runtime workers (the main thread, blocking tasks) write each line at
//! once, as before: they never park through the runtime, so nothing would flush them.

use std::cell::{Cell, RefCell};
use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;

/// A worker writes its buffer once it holds this many bytes (about 30 access lines).
pub const FLUSH_AT: usize = 8 * 1024;

/// Pending lines; flushed when the thread exits, too.
struct Pending(Vec<u8>);

impl Drop for Pending {
    fn drop(&mut self) {
        write_out(&mut self.0);
    }
}

thread_local! {
    static PENDING: RefCell<Pending> = const { RefCell::new(Pending(Vec::new())) };
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
}

fn write_out(bytes: &mut Vec<u8>) {
    if !bytes.is_empty() {
        let _ = sink(bytes);
        bytes.clear();
    }
}

#[cfg(not(test))]
fn sink(bytes: &[u8]) -> std::io::Result<()> {
    std::io::stdout().lock().write_all(bytes)
}

#[cfg(test)]
fn sink(bytes: &[u8]) -> std::io::Result<()> {
    tests::WRITTEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend_from_slice(bytes);
    Ok(())
}

/// The runtime's park hook: marks the calling thread as a worker (its lines are batched from
/// now on) and writes what it holds.
pub fn flush_worker() {
    IS_WORKER.set(true);
    let _ = PENDING.try_with(|pending| {
        if let Ok(mut pending) = pending.try_borrow_mut() {
            write_out(&mut pending.0);
        }
    });
}

/// The [`MakeWriter`] of the JSON layer in production.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchedStdout;

impl<'a> MakeWriter<'a> for BatchedStdout {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter
    }
}

/// Takes whole lines, one `write_all` each.
#[derive(Debug)]
pub struct LineWriter;

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, line: &[u8]) -> std::io::Result<()> {
        if !IS_WORKER.get() {
            return sink(line);
        }
        let buffered = PENDING.try_with(|pending| match pending.try_borrow_mut() {
            Ok(mut pending) => {
                pending.0.extend_from_slice(line);
                if pending.0.len() >= FLUSH_AT {
                    write_out(&mut pending.0);
                }
                true
            }
            Err(_) => false,
        });
        match buffered {
            Ok(true) => Ok(()),
            // The thread is exiting, or re-entered: write through.
            _ => sink(line),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// What the tests' stdout received, from every thread.
    pub(super) static WRITTEN: Mutex<Vec<u8>> = Mutex::new(Vec::new());

    fn pending() -> usize {
        PENDING.with(|p| p.borrow().0.len())
    }

    fn was_written(bytes: &[u8]) -> bool {
        let written = WRITTEN.lock().unwrap();
        written.windows(bytes.len()).any(|w| w == bytes)
    }

    #[test]
    fn a_worker_buffers_lines_until_it_parks_or_passes_the_threshold() {
        std::thread::spawn(|| {
            LineWriter.write_all(b"not a worker: one\n").unwrap();
            assert!(was_written(b"not a worker: one\n"), "written through");

            flush_worker();
            LineWriter.write_all(b"worker: two\n").unwrap();
            LineWriter.write_all(b"worker: three\n").unwrap();
            assert_eq!(pending(), 26, "a worker keeps its lines");
            assert!(!was_written(b"worker: two\n"));
            flush_worker();
            assert_eq!(pending(), 0, "parking writes them");
            assert!(
                was_written(b"worker: two\nworker: three\n"),
                "whole, in order"
            );

            let mut big = vec![b'x'; FLUSH_AT];
            big.extend_from_slice(b"big\n");
            LineWriter.write_all(&big).unwrap();
            assert_eq!(pending(), 0, "a full buffer is written at once");
            assert!(was_written(&big));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn only_the_runtime_workers_batch_never_the_thread_that_blocks_on_it() {
        std::thread::spawn(|| {
            let Ok(runtime) = crate::cli::runtime(true) else {
                panic!("no runtime");
            };
            let worker_batches = runtime.block_on(async {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                tokio::spawn(async {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    IS_WORKER.get()
                })
                .await
                .unwrap()
            });
            assert!(worker_batches, "a worker that parked batches");
            assert!(!IS_WORKER.get(), "the blocking thread writes through");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_worker_writes_what_it_holds_when_it_exits() {
        std::thread::spawn(|| {
            flush_worker();
            LineWriter.write_all(b"last words\n").unwrap();
            assert_eq!(pending(), 11);
        })
        .join()
        .unwrap();
        assert!(was_written(b"last words\n"));
    }
}
