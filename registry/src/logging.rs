//! Logging off the request path. Each event is formatted on the thread that
//! emits it, into that thread's buffer, and handed whole to a dedicated
//! writer thread through a bounded queue (`tracing-appender`): a request
//! never waits for a write to stderr. When the writer cannot keep up, lines
//! are dropped, never requests slowed; the drops are counted and reported.
//! The queue is flushed when the [`LogGuard`] is dropped, so no line is lost
//! at a clean exit (SIGTERM included).

use crate::config::LogFormat;
use std::io::IsTerminal;
use std::time::Duration;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};

/// Lines that may wait for the writer; beyond this they are dropped.
const QUEUE_LINES: usize = 64 * 1024;

/// Keeps the writer thread alive; dropping it flushes every queued line.
pub struct LogGuard {
    _worker: WorkerGuard,
    dropped: ErrorCounter,
}

impl LogGuard {
    /// Lines dropped so far because the queue was full.
    pub fn dropped(&self) -> usize {
        self.dropped.dropped_lines()
    }

    /// Report dropped lines every `every` (a line of its own, when any).
    pub fn spawn_drop_reporter(&self, every: Duration) {
        let counter = self.dropped.clone();
        tokio::spawn(async move {
            let mut reported = 0;
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let now = counter.dropped_lines();
                if now > reported {
                    tracing::warn!(
                        dropped = now - reported,
                        total_dropped = now,
                        "log lines dropped: the log writer could not keep up with the requests"
                    );
                    reported = now;
                }
            }
        });
    }
}

/// Colour only for a person at a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>): escape codes fill log files and break `grep`.
pub fn use_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Install the global subscriber: `RUST_LOG` filtering (default `info`),
/// text or JSON lines on stderr through the non-blocking writer.
pub fn init(format: LogFormat) -> LogGuard {
    let (writer, worker) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUE_LINES)
        .thread_name("registry-log")
        .finish(std::io::stderr());
    let dropped = writer.error_counter();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(use_colour());
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
    LogGuard {
        _worker: worker,
        dropped,
    }
}
