//! Logging off the request path. Each event is formatted on the thread that
//! emits it (into that thread's buffer, by `tracing-subscriber`) and the
//! whole line is appended to a shared, bounded buffer; a dedicated writer
//! thread wakes every few milliseconds and writes everything gathered in
//! one system call. A request never waits for stderr, and the writer does
//! not wake once per line (a wake-up and a `write` per line cost a fifth of
//! the throughput of small requests on two cores). When the buffer is full
//! (the destination is slower than the requests), lines are dropped, never
//! requests slowed; drops are counted and reported. Dropping the
//! [`LogGuard`] writes what is buffered, so no line is lost at a clean exit
//! (SIGTERM included).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written: text for people, JSON lines for collectors.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Bytes of log lines that may wait for the writer; beyond this, lines are
/// dropped.
const BUFFER_LIMIT: usize = 8 << 20;

/// How long lines may wait before they are written.
const TICK: Duration = Duration::from_millis(10);

struct Shared {
    pending: Mutex<Vec<u8>>,
    /// Woken to write at once (shutdown).
    wake: Condvar,
    stop: AtomicBool,
    dropped: AtomicUsize,
}

/// The `MakeWriter` of the subscriber: appends whole lines to the buffer.
#[derive(Clone)]
pub struct LineSink {
    shared: Arc<Shared>,
}

/// One event's line, appended in one piece when the formatter is done.
pub struct Line {
    shared: Arc<Shared>,
    buf: Vec<u8>,
}

impl Write for Line {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            LineSink {
                shared: self.shared.clone(),
            }
            .append(&self.buf);
        }
    }
}

impl<'a> MakeWriter<'a> for LineSink {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            shared: self.shared.clone(),
            buf: Vec::with_capacity(512),
        }
    }
}

/// Keeps the writer thread; dropping it writes every buffered line.
pub struct LogGuard {
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl LogGuard {
    /// Lines dropped so far because the buffer was full.
    pub fn dropped(&self) -> usize {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Report dropped lines every `every` (a line of its own, when any).
    pub fn spawn_drop_reporter(&self, every: Duration) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut reported = 0;
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let now = shared.dropped.load(Ordering::Relaxed);
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

impl Drop for LogGuard {
    fn drop(&mut self) {
        {
            // Under the lock: the writer cannot be between its check of
            // `stop` and its wait, so the wake-up is not lost.
            let _pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.shared.stop.store(true, Ordering::Release);
            self.shared.wake.notify_one();
        }
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Write what is pending to `out` until told to stop, then once more:
/// asleep while there is nothing to write, and once woken, a tick's worth
/// of lines gathered into one write.
fn write_loop(shared: Arc<Shared>, mut out: impl Write) {
    let mut batch = Vec::with_capacity(64 << 10);
    loop {
        let stopping = {
            let mut pending = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
            while pending.is_empty() && !shared.stop.load(Ordering::Acquire) {
                pending = shared.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
            }
            if !shared.stop.load(Ordering::Acquire) {
                // Let the lines of the next few milliseconds join this write.
                let (p, _) = shared
                    .wake
                    .wait_timeout(pending, TICK)
                    .unwrap_or_else(|e| e.into_inner());
                pending = p;
            }
            std::mem::swap(&mut *pending, &mut batch);
            shared.stop.load(Ordering::Acquire)
        };
        if !batch.is_empty() {
            // Nothing to do about a failing stderr but keep serving.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            batch.clear();
            // Do not keep a flood's worth of memory.
            batch.shrink_to(64 << 10);
        }
        if stopping {
            return;
        }
    }
}

/// Colour only for a person at a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>): escape codes fill log files and break `grep`.
pub fn use_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The sink and its writer thread, writing to `out`.
pub fn sink(out: impl Write + Send + 'static) -> (LineSink, LogGuard) {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Vec::with_capacity(64 << 10)),
        wake: Condvar::new(),
        stop: AtomicBool::new(false),
        dropped: AtomicUsize::new(0),
    });
    let writer = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("registry-log".into())
            .spawn(move || write_loop(shared, out))
            .expect("start the log writer thread")
    };
    (
        LineSink {
            shared: shared.clone(),
        },
        LogGuard {
            shared,
            writer: Some(writer),
        },
    )
}

/// Where the access log writes its lines itself (see `crate::observe::access`):
/// installed by [`init`] unless colour is on (a terminal: a person reads,
/// tracing's own formatting is worth its cost there).
static DIRECT: std::sync::OnceLock<(LineSink, LogFormat)> = std::sync::OnceLock::new();

/// The sink and format for lines formatted by their emitter, if installed.
pub fn direct() -> Option<&'static (LineSink, LogFormat)> {
    DIRECT.get()
}

impl LineSink {
    /// Append one whole line (with its newline). The first line after the
    /// writer has written wakes it; the rest of the tick's lines join it.
    pub fn append(&self, line: &[u8]) {
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if pending.len() + line.len() > BUFFER_LIMIT {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let first = pending.is_empty();
        pending.extend_from_slice(line);
        drop(pending);
        if first {
            self.shared.wake.notify_one();
        }
    }
}

/// Install the global subscriber: `RUST_LOG` filtering (default `info`),
/// text or JSON lines on stderr through the writer thread.
pub fn init(format: LogFormat) -> LogGuard {
    let (sink, guard) = sink(std::io::stderr());
    if !use_colour() {
        let _ = DIRECT.set((sink.clone(), format));
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink)
        .with_ansi(use_colour());
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
    guard
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` into shared memory, to read what the writer wrote.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_whole_and_all_are_written_at_drop() {
        let out = Capture::default();
        let (sink, guard) = sink(out.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        let mut line = sink.make_writer();
                        // Written in pieces, as a formatter does.
                        write!(line, "thread {t} ").unwrap();
                        writeln!(line, "line {i}").unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 4000);
        assert!(text
            .lines()
            .all(|l| l.starts_with("thread ") && l.contains(" line ")));
    }

    #[test]
    fn a_full_buffer_drops_and_counts_lines() {
        // A destination that never returns: nothing is written until drop.
        struct Stuck(Arc<(Mutex<bool>, Condvar)>);
        impl Write for Stuck {
            fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
                let (m, c) = &*self.0;
                let mut go = m.lock().unwrap();
                while !*go {
                    go = c.wait(go).unwrap();
                }
                Ok(data.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (sink, guard) = sink(Stuck(gate.clone()));
        let line = vec![b'x'; 1 << 16];
        for _ in 0..300 {
            sink.make_writer().write_all(&line).unwrap();
        }
        assert!(guard.dropped() > 0, "18 MiB of lines fit an 8 MiB buffer");
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        drop(guard);
    }
}
