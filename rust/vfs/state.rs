//! Per-database state shared by every file of that database: counters, the
//! per-method call counts, the fault slot and the crash slot, plus the global
//! registry that maps a main-database path to that state.
//!
//! Files look their state up once, in `xOpen`, and keep an `Arc` to it in the
//! file header, so hot paths never hash a path.
//!
//! The registry is per fork generation: a forked child's files get fresh
//! state (no armed fault or crash plan of the parent's) and never wait on a
//! registry lock a parent thread held at the fork.
//!
//! Fork and file locks: the unix VFS keeps one lock record per inode for the
//! whole process, shared by every connection to the file. A child inherits
//! the record with the locks the parent's threads held at the fork (a write
//! transaction's RESERVED or PENDING), but not the POSIX locks themselves,
//! and no thread of the child will ever release them: every connection the
//! child opens to that file would get `SQLITE_BUSY` for ever. So the shim
//! lists the main-database files it has open ([`note_main_open`]) and the
//! first file opened in a new fork generation releases, through the real
//! VFS's `xUnlock`, what the inherited files hold
//! ([`release_inherited_locks`]). In the child that only rewrites the
//! record: the child owns no POSIX lock, so the unlock cannot touch the
//! parent's. The inherited connections are never used again (their handles
//! refuse with `Error::Forked`), so nothing relies on the locks they had.

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::ffi::c_int;
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::ffi;

use super::crash::CrashSlot;
use super::faults::{FaultSlot, FileRole, VfsMethod};
use super::inner::inner_call;
use super::stats::Counters;
use crate::sys::fork::{self, ForkLocal};

/// Everything the shim tracks for one main database.
#[derive(Debug, Default)]
pub(crate) struct DbState {
    /// I/O accounting.
    pub(crate) counters: Counters,
    /// Calls per method (faulted or not) since arming / reset.
    pub(crate) calls: [AtomicU64; VfsMethod::ALL.len()],
    /// The armed fault, if any.
    pub(crate) faults: FaultSlot,
    /// The crash-simulation plan and its pending writes, if any.
    pub(crate) crash: CrashSlot,
    /// The last file `xOpen` refused because a non-regular file stood at
    /// its name, with the code it failed with (see
    /// [`crate::vfs::refused_open`]).
    pub(crate) refused_open: Mutex<Option<(PathBuf, c_int)>>,
}

impl DbState {
    /// Counts one call of `method` and decides whether it fails.
    #[inline]
    pub(crate) fn enter(&self, method: VfsMethod, role: FileRole) -> Option<i32> {
        self.calls[method.index()].fetch_add(1, Ordering::Relaxed);
        self.faults.check(method, role)
    }

    /// Remembers that `xOpen` refused `path` with `code`.
    pub(crate) fn note_refused_open(&self, path: &Path, code: c_int) {
        *self.refused_open.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((path.to_owned(), code));
    }

    /// Zeroes the per-method call counts.
    pub(crate) fn reset_calls(&self) {
        for c in &self.calls {
            c.store(0, Ordering::Relaxed);
        }
    }
}

type Registry = Mutex<HashMap<PathBuf, Arc<DbState>>>;

fn registry() -> &'static Registry {
    static REG: ForkLocal<Registry> = ForkLocal::new(|| {
        // The first file of each generation opens through here, before the
        // real VFS sees it.
        release_inherited_locks();
        Registry::default()
    });
    REG.get()
}

/// The real (inner) files of the main databases open through the shim,
/// each with the fork generation that opened it or last released its locks
/// and the address of the file name SQLite opened it with (its pager's
/// `zFilename`, which `sqlite3_filename_database` of the pager's journal
/// name returns: how a journal's open finds its own database's file).
///
/// Guarded by a spin flag rather than a `Mutex`: the fork handlers hold it
/// across `fork()` ([`fork_prepare`], registered with `sys::fork`), so the child inherits a list no
/// thread was half-way through changing, and a flag can be released by the
/// handlers without a guard. Holders only push or remove one entry (or, in
/// a child, unlock the inherited files), never block otherwise.
struct OpenMainFiles {
    busy: AtomicBool,
    files: UnsafeCell<Vec<OpenMainFile>>,
}

/// One entry of [`OPEN_MAIN_FILES`].
struct OpenMainFile {
    inner: usize,
    generation: u64,
    name: usize,
}

// SAFETY: `files` is only reached through `with`, under the `busy` flag.
unsafe impl Sync for OpenMainFiles {}

static OPEN_MAIN_FILES: OpenMainFiles = OpenMainFiles {
    busy: AtomicBool::new(false),
    files: UnsafeCell::new(Vec::new()),
};

impl OpenMainFiles {
    fn acquire(&self) {
        while self
            .busy
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
    }

    fn release(&self) {
        self.busy.store(false, Ordering::Release);
    }

    fn with<R>(&self, f: impl FnOnce(&mut Vec<OpenMainFile>) -> R) -> R {
        self.acquire();
        // SAFETY: the flag is ours until `release`.
        let out = f(unsafe { &mut *self.files.get() });
        self.release();
        out
    }
}

/// Records a main-database file the real VFS just opened (`inner` is the
/// real file inside the shim's, `name` the file name SQLite passed to xOpen).
pub(crate) fn note_main_open(inner: *mut ffi::sqlite3_file, name: *const std::ffi::c_char) {
    let generation = fork::generation();
    OPEN_MAIN_FILES.with(|files| {
        files.push(OpenMainFile {
            inner: inner as usize,
            generation,
            name: name as usize,
        })
    });
}

/// The real file of the open main database whose xOpen was given the file
/// name at `name` (see [`OpenMainFiles`]); None when no such file is open.
pub(crate) fn main_file_named(name: *const std::ffi::c_char) -> Option<*mut ffi::sqlite3_file> {
    if name.is_null() {
        return None;
    }
    OPEN_MAIN_FILES.with(|files| {
        files
            .iter()
            .find(|f| f.name == name as usize)
            .map(|f| f.inner as *mut ffi::sqlite3_file)
    })
}

/// Closes a main-database file with `close` and forgets it, in one step
/// no fork can split: the unix VFS's close releases the file's locks under
/// the per-inode lock-record mutex (see [`fork_gate`]).
pub(crate) fn close_main(inner: *mut ffi::sqlite3_file, close: impl FnOnce() -> c_int) -> c_int {
    OPEN_MAIN_FILES.with(|files| {
        let rc = close();
        if let Some(i) = files.iter().position(|f| f.inner == inner as usize) {
            files.swap_remove(i);
        }
        rc
    })
}

/// Runs a main-database file's `xLock`/`xUnlock`/`xCheckReservedLock`
/// (`call`) so that no fork happens inside it. The unix VFS runs them under
/// a mutex of the file's inode record; a thread of the parent holding that
/// mutex at the fork would leave it locked for ever in the child, whose
/// opens of the file would hang. Other files (journals, temp files) take no
/// locks and pass straight through. Costs one uncontended flag flip per
/// call; threads locking at the same instant take turns (microseconds: no
/// call waits inside, SQLite's busy handler sleeps between calls).
pub(crate) fn fork_gate(role: FileRole, call: impl FnOnce() -> c_int) -> c_int {
    if role == FileRole::MainDb {
        OPEN_MAIN_FILES.with(|_| call())
    } else {
        call()
    }
}

/// In a forked child: releases, in the real VFS's per-inode lock records,
/// the locks held by files opened before the fork (see the module docs).
/// Each file is released once per generation; in a process that never
/// forked this finds nothing to do.
fn release_inherited_locks() {
    let generation = fork::generation();
    OPEN_MAIN_FILES.with(|files| {
        for file in files.iter_mut().filter(|f| f.generation != generation) {
            let inner = file.inner as *mut ffi::sqlite3_file;
            // SAFETY: a listed file's memory outlives its listing (it is
            // unlisted inside its xClose, before SQLite frees it). A file
            // closed just before the fork has a cleared method table.
            if unsafe { (*inner).pMethods.is_null() } {
                continue;
            }
            // NONE from any level skips the downgrade to SHARED (which
            // would take a POSIX read lock) and clears the inode record once
            // no inherited file holds a share. A failure leaves the record
            // as it was: the child's opens of that file then see BUSY, as
            // they would without this release.
            let _ = inner_call!(inner, 1, xUnlock, ffi::SQLITE_OK, ffi::SQLITE_LOCK_NONE);
            file.generation = generation;
        }
    });
}

#[cfg(unix)]
/// `pthread_atfork` prepare handler: holds the open-file list across the
/// fork. Only flips an atomic flag (waiting, at most, for one list update).
pub(crate) fn fork_prepare() {
    OPEN_MAIN_FILES.acquire();
}

#[cfg(unix)]
/// `pthread_atfork` parent and child handler: releases the list again.
pub(crate) fn fork_release() {
    OPEN_MAIN_FILES.release();
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Arc<DbState>>> {
    registry().lock().unwrap_or_else(|e| e.into_inner())
}

/// The state of `db`, created if needed. Entries are never removed (a few
/// hundred bytes per distinct database path for the life of the process).
pub(crate) fn state_for(db: &Path) -> Arc<DbState> {
    let mut g = lock();
    if let Some(s) = g.get(db) {
        return Arc::clone(s);
    }
    let s = Arc::new(DbState::default());
    g.insert(db.to_path_buf(), Arc::clone(&s));
    s
}

/// The state of `db` if it has any.
pub(crate) fn existing(db: &Path) -> Option<Arc<DbState>> {
    lock().get(db).cloned()
}

/// Strips `-mj` and what follows, if the name is a super-journal name
/// (`<db>-mj` followed by hex digits).
fn strip_super(b: &[u8]) -> Option<&[u8]> {
    let pos = b.windows(3).rposition(|w| w == b"-mj")?;
    let tail = &b[pos + 3..];
    (!tail.is_empty() && tail.iter().all(u8::is_ascii_hexdigit)).then_some(&b[..pos])
}

/// Maps a file name seen by `xDelete`/`xAccess` to its main database and role,
/// by suffix: `-journal`, `-wal`, `-shm`, `-mjXXXX`, else the db itself.
pub(crate) fn classify_name(name: &CStr) -> (PathBuf, FileRole) {
    let b = name.to_bytes();
    let (stem, role): (&[u8], FileRole) = if let Some(s) = b.strip_suffix(b"-journal") {
        (s, FileRole::MainJournal)
    } else if let Some(s) = b.strip_suffix(b"-wal") {
        (s, FileRole::Wal)
    } else if let Some(s) = b.strip_suffix(b"-shm") {
        (s, FileRole::Other)
    } else if let Some(s) = strip_super(b) {
        (s, FileRole::SuperJournal)
    } else {
        (b, FileRole::MainDb)
    };
    (bytes_to_path(stem), role)
}

/// The main database a file opened with `role` belongs to, if it has a name.
pub(crate) fn key_for_open(name: Option<&CStr>, role: FileRole) -> Option<PathBuf> {
    let name = name?;
    let b = name.to_bytes();
    let stem = match role {
        FileRole::MainDb => b,
        FileRole::MainJournal => b.strip_suffix(b"-journal").unwrap_or(b),
        FileRole::Wal => b.strip_suffix(b"-wal").unwrap_or(b),
        FileRole::SuperJournal => strip_super(b).unwrap_or(b),
        FileRole::Temp | FileRole::Other => return Some(classify_name(name).0),
    };
    Some(bytes_to_path(stem))
}

fn bytes_to_path(b: &[u8]) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(b))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(b).into_owned())
    }
}
