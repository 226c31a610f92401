//! What a writer connection does while another holds SQLite's write lock.
//!
//! SQLite's own busy handler (`busy_timeout`) sleeps 1, 2, 5, 10, 15 ... ms
//! between retries. Our writer connections each hold the lock for tens of
//! microseconds, so those sleeps dominated the latency of small pushes
//! (p99 ~20 ms = 1+2+5+10 ms of sleeping). This handler yields first, then
//! sleeps in steps of at most 200 µs, and gives up after the configured
//! budget (the database's busy timeout).

use sqlx::sqlite::SqliteConnection;
use std::os::raw::{c_int, c_void};
use std::time::Duration;

/// How long a writer waits for the lock by default before failing with
/// SQLITE_BUSY (which the registry answers with 503).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(10);

/// Retries that only yield the CPU before sleeping starts.
const YIELDS: c_int = 8;
const STEP: Duration = Duration::from_micros(200);

/// The wait before retry number `count` (from 0), or `None` to give up.
fn pause(count: c_int, budget: Duration) -> Option<Duration> {
    if count < YIELDS {
        return Some(Duration::ZERO);
    }
    let slept = STEP * (count - YIELDS) as u32;
    (slept < budget).then_some(STEP)
}

/// The budget travels in the callback's user-data pointer, as microseconds:
/// no allocation to keep alive for the connection's lifetime.
extern "C" fn on_busy(budget_us: *mut c_void, count: c_int) -> c_int {
    match pause(count, Duration::from_micros(budget_us as usize as u64)) {
        Some(d) if d.is_zero() => {
            std::thread::yield_now();
            1
        }
        Some(d) => {
            std::thread::sleep(d);
            1
        }
        None => 0,
    }
}

/// Install the handler on a new connection (replaces `busy_timeout`'s).
pub(super) async fn install(conn: &mut SqliteConnection, budget: Duration) -> sqlx::Result<()> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is a live connection, locked for this call; the
    // callback's "pointer" is a number it never dereferences.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_busy_handler(
            handle.as_raw_handle().as_ptr(),
            Some(on_busy),
            budget.as_micros() as usize as *mut c_void,
        )
    };
    if rc == libsqlite3_sys::SQLITE_OK {
        Ok(())
    } else {
        Err(sqlx::Error::Protocol(format!(
            "sqlite3_busy_handler failed with {rc}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_then_sleeps_short_then_gives_up() {
        let budget = DEFAULT_BUDGET;
        assert_eq!(pause(0, budget), Some(Duration::ZERO));
        assert_eq!(pause(YIELDS, budget), Some(STEP));
        let last = YIELDS + (budget.as_micros() / STEP.as_micros()) as c_int;
        assert_eq!(pause(last - 1, budget), Some(STEP));
        assert_eq!(pause(last, budget), None);
        assert_eq!(pause(YIELDS + 5, STEP * 5), None);
    }
}
