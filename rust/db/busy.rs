//! The busy handler every memtree connection installs: short, jittered
//! retries for up to [`BUSY_TIMEOUT`] (a test may set another budget for its
//! process: [`set_timeout`]), polling faster the longer a call has waited.
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::{Error, Result};

/// How long a statement keeps retrying a lock held by another connection
/// before it fails with `SQLITE_BUSY` (`memtree.BusyError`).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest budget [`set_timeout`] takes.
pub const MAX_BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The budget in force, in microseconds: [`BUSY_TIMEOUT`] unless a test set
/// another ([`set_timeout`]).
static TIMEOUT_US: AtomicU64 = AtomicU64::new(BUSY_TIMEOUT.as_micros() as u64);

/// Sets how long every busy wait of this process lasts before it fails with
/// `SQLITE_BUSY`; returns the previous budget. A test seam
/// (`memtree.testing.set_busy_timeout`): a test proves that a held lock is
/// waited for and then reported as busy with a small budget rather than by
/// waiting out the real 5 s. A lower budget also caps recovery's fixed
/// waits (`crate::recovery::within_busy_budget`). More than
/// [`MAX_BUSY_TIMEOUT`] is refused and changes nothing.
pub fn set_timeout(budget: Duration) -> Result<Duration> {
    if budget > MAX_BUSY_TIMEOUT {
        return Err(Error::invalid(
            "seconds",
            format!("must be at most {} seconds", MAX_BUSY_TIMEOUT.as_secs()),
        ));
    }
    // At most 6e7 microseconds: the cast cannot truncate.
    let previous = TIMEOUT_US.swap(budget.as_micros() as u64, Ordering::Relaxed);
    Ok(Duration::from_micros(previous))
}

/// The busy budget in force now: [`BUSY_TIMEOUT`] unless a test set another.
pub fn timeout() -> Duration {
    Duration::from_micros(TIMEOUT_US.load(Ordering::Relaxed))
}

/// How long a read keeps trying, in turns of the busy budget, before it
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
        std::ffi::c_int::from(on_busy(count, timeout()))
    }
    set_handler(conn, trampoline)
}

/// A busy callback as SQLite calls it: `(user pointer, retries so far)`.
type Handler = unsafe extern "C" fn(*mut std::ffi::c_void, std::ffi::c_int) -> std::ffi::c_int;

fn set_handler(conn: &Connection, handler: Handler) -> rusqlite::Result<()> {
    // SAFETY: the handle is valid for the life of `conn`; the callback is a
    // plain function that captures nothing, so the null user pointer is
    // never read.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_busy_handler(conn.handle(), Some(handler), std::ptr::null_mut())
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

/// SQLite's busy callback, given the `budget` of a wait: `true` to retry,
/// `false` to give up with BUSY.
fn on_busy(count: i32, budget: Duration) -> bool {
    let now = Instant::now();
    let started = WAIT_STARTED.with(|s| match s.get() {
        Some(t) if count > 0 => t,
        _ => {
            s.set(Some(now));
            now
        }
    });
    let waited = now.saturating_duration_since(started);
    if waited >= budget {
        return false;
    }
    let mean = if waited >= URGENT_AFTER {
        URGENT_NAP
    } else {
        NAP
    };
    // Never sleep past the deadline.
    std::thread::sleep(jittered(mean).min(budget - waited));
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
    fn a_budget_past_the_maximum_is_refused_and_changes_nothing() {
        // No test of this crate sets a budget (they run in parallel in one
        // process): the default is in force.
        let err =
            set_timeout(MAX_BUSY_TIMEOUT + Duration::from_millis(1)).expect_err("past the maximum");
        assert!(err.to_string().contains("seconds"), "{err}");
        assert_eq!(timeout(), BUSY_TIMEOUT);
    }

    /// The handler with a short budget, so the test below need not wait 5 s
    /// (the tests of this crate share one process: setting the process's
    /// budget would shorten the waits of tests running beside it).
    const SHORT_BUDGET: Duration = Duration::from_millis(300);

    unsafe extern "C" fn short_handler(
        _: *mut std::ffi::c_void,
        count: std::ffi::c_int,
    ) -> std::ffi::c_int {
        std::ffi::c_int::from(on_busy(count, SHORT_BUDGET))
    }

    #[test]
    fn a_held_lock_is_waited_for_then_reported_busy_after_the_budget() -> rusqlite::Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("busy.db");
        let mut holder = Connection::open(&path)?;
        holder.execute_batch("CREATE TABLE t (x)")?;
        let waiter = Connection::open(&path)?;
        set_handler(&waiter, short_handler)?;
        let tx = holder.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        let start = Instant::now();
        let err = waiter
            .execute("INSERT INTO t VALUES (1)", [])
            .expect_err("the lock is held throughout");
        let waited = start.elapsed();
        assert_eq!(err.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
        assert!(waited >= SHORT_BUDGET, "gave up after {waited:?}");
        assert!(waited < SHORT_BUDGET + Duration::from_secs(2), "{waited:?}");
        tx.rollback()?;
        // Released: the same waiter now gets through at once.
        waiter.execute("INSERT INTO t VALUES (1)", [])?;
        Ok(())
    }

    #[test]
    fn installed_connections_wait_the_process_budget_5_s_by_default() -> rusqlite::Result<()> {
        // What `install` hands SQLite reads `timeout()` at every retry; no
        // test of this crate sets it, so it is the default.
        assert_eq!(BUSY_TIMEOUT, Duration::from_secs(5));
        assert_eq!(timeout(), BUSY_TIMEOUT);
        let conn = Connection::open_in_memory()?;
        install(&conn)?;
        Ok(())
    }
}
