//! Fault injection: which VFS method to fail, on which call, with which code.
//!
//! A database has at most one armed [`Fault`] at a time, optionally followed by
//! a queue of faults armed one after another: when a one-shot fault fires, the
//! next one in the queue is armed and starts counting from the following call
//! (this is how a test fails an open once and then call N of the recovery that
//! open triggers). A persistent fault never hands over. The hot path checks one
//! [`AtomicBool`] per call and takes the fault mutex only when a fault is armed
//! for that database, so the cost with no fault armed is one relaxed load.
//!
//! Notes on how SQLite treats injected codes:
//! - `xRead` returns the code as given. SQLite treats `SQLITE_IOERR_SHORT_READ`
//!   (522) specially: it is not an error but "fewer bytes than asked, rest
//!   zero-filled", and the VFS contract requires the buffer's tail to be zeroed.
//!   An injected 522 does not touch the buffer, so it reads as zeros only if the
//!   caller's buffer already was; do not inject 522 unless that is what you test.
//! - `xLock`/`xUnlock`/`xCheckReservedLock` faults do not call the real method.
//! - an `xClose` fault still closes the real file (nothing leaks) and then
//!   returns the code.
//! - an `xOpen` fault returns the code without opening anything and leaves
//!   `pMethods` null, as SQLite requires of a failed open.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// A VFS or file method that can be counted and failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VfsMethod {
    /// `sqlite3_vfs.xOpen`.
    Open,
    /// `sqlite3_vfs.xDelete`.
    Delete,
    /// `sqlite3_vfs.xAccess`.
    Access,
    /// `sqlite3_io_methods.xClose`.
    Close,
    /// `sqlite3_io_methods.xRead`.
    Read,
    /// `sqlite3_io_methods.xWrite`.
    Write,
    /// `sqlite3_io_methods.xTruncate`.
    Truncate,
    /// `sqlite3_io_methods.xSync`.
    Sync,
    /// `sqlite3_io_methods.xFileSize`.
    FileSize,
    /// `sqlite3_io_methods.xLock`.
    Lock,
    /// `sqlite3_io_methods.xUnlock`.
    Unlock,
    /// `sqlite3_io_methods.xCheckReservedLock`.
    CheckReservedLock,
    /// `sqlite3_io_methods.xShmMap`.
    ShmMap,
    /// `sqlite3_io_methods.xShmLock`.
    ShmLock,
    /// `sqlite3_io_methods.xShmUnmap`.
    ShmUnmap,
}

impl VfsMethod {
    /// Every method, in index order.
    pub const ALL: [VfsMethod; 15] = [
        VfsMethod::Open,
        VfsMethod::Delete,
        VfsMethod::Access,
        VfsMethod::Close,
        VfsMethod::Read,
        VfsMethod::Write,
        VfsMethod::Truncate,
        VfsMethod::Sync,
        VfsMethod::FileSize,
        VfsMethod::Lock,
        VfsMethod::Unlock,
        VfsMethod::CheckReservedLock,
        VfsMethod::ShmMap,
        VfsMethod::ShmLock,
        VfsMethod::ShmUnmap,
    ];

    /// SQLite's name of the method, e.g. `"xOpen"`, `"xShmMap"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            VfsMethod::Open => "xOpen",
            VfsMethod::Delete => "xDelete",
            VfsMethod::Access => "xAccess",
            VfsMethod::Close => "xClose",
            VfsMethod::Read => "xRead",
            VfsMethod::Write => "xWrite",
            VfsMethod::Truncate => "xTruncate",
            VfsMethod::Sync => "xSync",
            VfsMethod::FileSize => "xFileSize",
            VfsMethod::Lock => "xLock",
            VfsMethod::Unlock => "xUnlock",
            VfsMethod::CheckReservedLock => "xCheckReservedLock",
            VfsMethod::ShmMap => "xShmMap",
            VfsMethod::ShmLock => "xShmLock",
            VfsMethod::ShmUnmap => "xShmUnmap",
        }
    }

    /// Position of the method in [`VfsMethod::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for VfsMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of [`VfsMethod::from_str`]: the name is not one of SQLite's method names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVfsMethod(pub String);

impl fmt::Display for UnknownVfsMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown VFS method name {:?}", self.0)
    }
}

impl std::error::Error for UnknownVfsMethod {}

impl FromStr for VfsMethod {
    type Err = UnknownVfsMethod;

    /// Parses SQLite's method name (`"xOpen"`, `"xRead"`, …, `"xShmMap"`), exactly.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VfsMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownVfsMethod(s.to_owned()))
    }
}

/// What a file is to SQLite, derived from the `xOpen` flags (or, for
/// `xDelete`/`xAccess`, from the file name's suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// `SQLITE_OPEN_MAIN_DB`.
    MainDb,
    /// `SQLITE_OPEN_MAIN_JOURNAL` (`<db>-journal`).
    MainJournal,
    /// `SQLITE_OPEN_WAL` (`<db>-wal`).
    Wal,
    /// `SQLITE_OPEN_SUPER_JOURNAL` (`<db>-mjXXXXXXXX`).
    SuperJournal,
    /// Temp db, temp journal, transient db, sub-journal.
    Temp,
    /// Anything else.
    Other,
}

/// A fault to inject into the VFS calls of one database.
#[derive(Debug, Clone)]
pub struct Fault {
    /// The method to fail.
    pub method: VfsMethod,
    /// 1-based: fail the `nth` call of `method` (counted for this database and,
    /// if `role` is set, only on files of that role) after arming. 0 acts as 1.
    pub nth: u64,
    /// The (extended) result code the method returns instead of running.
    pub code: i32,
    /// If true, every later call of that method fails too, until cleared.
    pub persistent: bool,
    /// Only count and fail calls on files of this role.
    pub role: Option<FileRole>,
}

#[derive(Debug)]
struct Armed {
    fault: Fault,
    /// Calls matching method (and role) since arming.
    matched: u64,
}

/// The armed fault and the ones queued behind it.
#[derive(Debug, Default)]
struct Chain {
    current: Option<Armed>,
    /// Armed in order, each once its predecessor (a one-shot fault) fired.
    queued: VecDeque<Fault>,
}

/// The fault slot of one database.
#[derive(Debug, Default)]
pub(crate) struct FaultSlot {
    armed: AtomicBool,
    fired: AtomicU64,
    slot: Mutex<Chain>,
}

impl FaultSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Chain> {
        // A panic while holding this short lock cannot leave it inconsistent.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms the first of `faults` now and queues the rest: each is armed when
    /// its predecessor, a one-shot fault, fires (a persistent one never hands
    /// over). Replaces anything armed before and zeroes the fired count, which
    /// from then on sums the firings of the whole chain. An empty list disarms.
    pub(crate) fn arm_chain(&self, faults: Vec<Fault>) {
        let mut g = self.lock();
        let mut queued: VecDeque<Fault> = faults.into();
        let current = queued.pop_front().map(|fault| Armed { fault, matched: 0 });
        let armed = current.is_some();
        *g = Chain { current, queued };
        self.fired.store(0, Ordering::Relaxed);
        self.armed.store(armed, Ordering::Release);
    }

    /// Disarms (the queue too); returns how many times the chain fired.
    pub(crate) fn disarm(&self) -> u64 {
        let mut g = self.lock();
        *g = Chain::default();
        self.armed.store(false, Ordering::Release);
        self.fired.load(Ordering::Relaxed)
    }

    /// How many times the current (or last cleared) fault chain fired.
    pub(crate) fn fired(&self) -> u64 {
        self.fired.load(Ordering::Relaxed)
    }

    /// Decides whether this call fails: `Some(code)` if it does.
    #[inline]
    pub(crate) fn check(&self, method: VfsMethod, role: FileRole) -> Option<i32> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        self.check_slow(method, role)
    }

    #[cold]
    fn check_slow(&self, method: VfsMethod, role: FileRole) -> Option<i32> {
        let mut g = self.lock();
        let armed = g.current.as_mut()?;
        if armed.fault.method != method || armed.fault.role.is_some_and(|r| r != role) {
            return None;
        }
        armed.matched += 1;
        let nth = armed.fault.nth.max(1);
        if armed.matched == nth || (armed.fault.persistent && armed.matched > nth) {
            self.fired.fetch_add(1, Ordering::Relaxed);
            let code = armed.fault.code;
            if !armed.fault.persistent {
                // The firing call is this fault's; the next counts from the
                // call after it.
                let next = g.queued.pop_front();
                let any = next.is_some();
                g.current = next.map(|fault| Armed { fault, matched: 0 });
                if !any {
                    // Spent: keep the hot path's one relaxed load.
                    self.armed.store(false, Ordering::Release);
                }
            }
            Some(code)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn once(method: VfsMethod, nth: u64, code: i32) -> Fault {
        Fault {
            method,
            nth,
            code,
            persistent: false,
            role: None,
        }
    }

    /// Which of `calls` fail, and with which code.
    fn run(slot: &FaultSlot, calls: &[VfsMethod]) -> Vec<Option<i32>> {
        calls
            .iter()
            .map(|&m| slot.check(m, FileRole::MainDb))
            .collect()
    }

    #[test]
    fn a_chained_fault_counts_from_the_call_after_its_predecessor_fired() {
        use VfsMethod::{Open, Write};
        let slot = FaultSlot::default();
        slot.arm_chain(vec![once(Open, 1, 14), once(Write, 2, 13)]);
        // A write before the first fault fired does not count for the second.
        let got = run(&slot, &[Write, Open, Open, Write, Write, Write]);
        assert_eq!(got, [None, Some(14), None, None, Some(13), None]);
        assert_eq!(slot.fired(), 2);
        assert!(!slot.armed.load(Ordering::Acquire), "a spent chain disarms");
        assert_eq!(slot.disarm(), 2);
    }

    #[test]
    fn a_persistent_link_never_hands_over_and_a_persistent_tail_keeps_failing() {
        use VfsMethod::{Open, Sync};
        let slot = FaultSlot::default();
        let mut stuck = once(Open, 1, 14);
        stuck.persistent = true;
        slot.arm_chain(vec![stuck.clone(), once(Sync, 1, 1034)]);
        assert_eq!(run(&slot, &[Open, Sync, Open]), [Some(14), None, Some(14)]);
        let mut tail = once(Sync, 2, 1034);
        tail.persistent = true;
        slot.arm_chain(vec![once(Open, 1, 14), tail]);
        assert_eq!(slot.fired(), 0, "re-arming zeroes the count");
        let got = run(&slot, &[Open, Sync, Sync, Sync, Open]);
        assert_eq!(got, [Some(14), None, Some(1034), Some(1034), None]);
        assert_eq!(slot.disarm(), 3);
        assert_eq!(run(&slot, &[Sync, Open]), [None, None], "disarmed");
    }

    #[test]
    fn a_single_one_shot_fault_fires_once() {
        let slot = FaultSlot::default();
        slot.arm_chain(vec![once(VfsMethod::Read, 2, 266)]);
        let got = run(&slot, &[VfsMethod::Read; 4]);
        assert_eq!(got, [None, Some(266), None, None]);
        assert_eq!(slot.fired(), 1);
    }
}
