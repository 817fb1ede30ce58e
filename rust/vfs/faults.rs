//! Fault injection: which VFS method to fail, on which call, with which code.
//!
//! A database has at most one armed [`Fault`]. The hot path checks one
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

/// The fault slot of one database.
#[derive(Debug, Default)]
pub(crate) struct FaultSlot {
    armed: AtomicBool,
    fired: AtomicU64,
    slot: Mutex<Option<Armed>>,
}

impl FaultSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Armed>> {
        // A panic while holding this short lock cannot leave it inconsistent.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms `fault`, replacing any previous one and zeroing the fired count.
    pub(crate) fn arm(&self, fault: Fault) {
        let mut g = self.lock();
        *g = Some(Armed { fault, matched: 0 });
        self.fired.store(0, Ordering::Relaxed);
        self.armed.store(true, Ordering::Release);
    }

    /// Disarms; returns how many times the fault fired.
    pub(crate) fn disarm(&self) -> u64 {
        let mut g = self.lock();
        *g = None;
        self.armed.store(false, Ordering::Release);
        self.fired.load(Ordering::Relaxed)
    }

    /// How many times the current (or last cleared) fault fired.
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
        let armed = g.as_mut()?;
        if armed.fault.method != method || armed.fault.role.is_some_and(|r| r != role) {
            return None;
        }
        armed.matched += 1;
        let nth = armed.fault.nth.max(1);
        if armed.matched == nth || (armed.fault.persistent && armed.matched > nth) {
            self.fired.fetch_add(1, Ordering::Relaxed);
            Some(armed.fault.code)
        } else {
            None
        }
    }
}
