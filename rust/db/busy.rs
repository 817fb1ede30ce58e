//! The busy handler every memtree connection installs: short, jittered
//! retries for up to [`BUSY_TIMEOUT`], polling faster the longer a call has
//! waited.
//!
//! Why not `sqlite3_busy_timeout`: its built-in handler sleeps 1, 2, 5, 10,
//! … ms and then 100 ms between tries. On a rollback journal a lock is free
//! only for the instants between one writer's commit and the next writer's
//! `BEGIN IMMEDIATE`; a waiter that looks every 100 ms keeps missing them
//! while a process whose threads commit back to back (its next thread is
//! already waiting on the connection mutex) takes every one. Measured with
//! `tests/contention.py` at 4 processes x 4 threads, that starved writers
//! past the 5 s timeout (5.5 `BusyError`s per 10,000 calls) and readers up
//! to 4.4 s. Retrying every ~1 ms, and every ~0.25 ms once a call has waited
//! longer than the others are likely to have, gives a waiter a chance at
//! nearly every free instant and lets the oldest waiter win most of them.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// How long a statement keeps retrying a lock held by another connection
/// before it fails with `SQLITE_BUSY` (`memtree.BusyError`).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a read keeps trying, in turns of [`BUSY_TIMEOUT`], before it
/// fails with `SQLITE_BUSY`. A read changes nothing and holds no lock between
/// tries, so on a loaded machine (a starved process, a steady stream of
/// writers from other processes) it waits longer than a write may.
pub const READ_BUSY_BUDGET: Duration = Duration::from_secs(30);

/// A call that has waited this long polls at [`URGENT_NAP`] instead of
/// [`NAP`]: age buys priority over calls that have only just met the lock.
const URGENT_AFTER: Duration = Duration::from_millis(250);
/// The mean pause between tries of a fresh wait.
const NAP: Duration = Duration::from_micros(1_000);
/// The mean pause between tries once the wait is older than [`URGENT_AFTER`].
const URGENT_NAP: Duration = Duration::from_micros(250);

thread_local! {
    /// When the current busy wait of this thread began. SQLite calls the
    /// handler on the thread running the statement, with `count == 0` at
    /// the first retry of each new wait.
    static WAIT_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// A per-thread xorshift state for the jitter (no shared state, no lock).
    static JITTER: Cell<u64> = const { Cell::new(0) };
}

/// Installs [`on_busy`] on `conn` (replacing any busy timeout). Through the
/// C API: rusqlite's `busy_handler` wants `&mut Connection`, which every
/// caller holding a shared connection would otherwise have to thread through.
pub fn install(conn: &Connection) -> rusqlite::Result<()> {
    unsafe extern "C" fn trampoline(
        _: *mut std::ffi::c_void,
        count: std::ffi::c_int,
    ) -> std::ffi::c_int {
        std::ffi::c_int::from(on_busy(count))
    }
    // SAFETY: the handle is valid for the life of `conn`; the callback is a
    // plain function that captures nothing, so the null user pointer is
    // never read.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_busy_handler(conn.handle(), Some(trampoline), std::ptr::null_mut())
    };
    if rc == rusqlite::ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rc),
            None,
        ))
    }
}

/// SQLite's busy callback: `true` to retry, `false` to give up with BUSY.
fn on_busy(count: i32) -> bool {
    let now = Instant::now();
    let started = WAIT_STARTED.with(|s| match s.get() {
        Some(t) if count > 0 => t,
        _ => {
            s.set(Some(now));
            now
        }
    });
    let waited = now.saturating_duration_since(started);
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    let mean = if waited >= URGENT_AFTER {
        URGENT_NAP
    } else {
        NAP
    };
    // Never sleep past the deadline.
    std::thread::sleep(jittered(mean).min(BUSY_TIMEOUT - waited));
    true
}

/// A pause uniformly spread over `mean / 2 ..= mean * 3 / 2`, so waiters in
/// different processes do not retry in lockstep.
fn jittered(mean: Duration) -> Duration {
    let r = JITTER.with(|state| {
        let mut x = state.get();
        if x == 0 {
            // Seeded from the clock and the state's own address (distinct
            // per thread); `| 1` keeps xorshift away from its fixed point 0.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            x = (u64::from(nanos) ^ (state as *const Cell<u64> as u64)) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x
    });
    let micros = u64::try_from(mean.as_micros()).unwrap_or(u64::MAX).max(2);
    Duration::from_micros(micros / 2 + r % (micros + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, ErrorCode, TransactionBehavior};

    #[test]
    fn jitter_stays_within_half_to_one_and_a_half_of_the_mean() {
        for _ in 0..10_000 {
            let d = jittered(NAP);
            assert!(d >= NAP / 2 && d <= NAP * 3 / 2, "{d:?}");
        }
    }

    #[test]
    fn a_held_lock_is_waited_for_then_reported_busy_after_the_timeout() -> rusqlite::Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("busy.db");
        let mut holder = Connection::open(&path)?;
        holder.execute_batch("CREATE TABLE t (x)")?;
        let waiter = Connection::open(&path)?;
        install(&waiter)?;
        let tx = holder.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        let start = Instant::now();
        let err = waiter
            .execute("INSERT INTO t VALUES (1)", [])
            .expect_err("the lock is held throughout");
        let waited = start.elapsed();
        assert_eq!(err.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
        assert!(waited >= BUSY_TIMEOUT, "gave up after {waited:?}");
        assert!(waited < BUSY_TIMEOUT + Duration::from_secs(2), "{waited:?}");
        tx.rollback()?;
        // Released: the same waiter now gets through at once.
        waiter.execute("INSERT INTO t VALUES (1)", [])?;
        Ok(())
    }
}
