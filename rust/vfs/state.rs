//! Per-database state shared by every file of that database: counters, the
//! per-method call counts, the fault slot and the crash slot, plus the global
//! registry that maps a main-database path to that state.
//!
//! Files look their state up once, in `xOpen`, and keep an `Arc` to it in the
//! file header, so hot paths never hash a path.

use std::collections::HashMap;
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::crash::CrashSlot;
use super::faults::{FaultSlot, FileRole, VfsMethod};
use super::stats::Counters;

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
}

impl DbState {
    /// Counts one call of `method` and decides whether it fails.
    #[inline]
    pub(crate) fn enter(&self, method: VfsMethod, role: FileRole) -> Option<i32> {
        self.calls[method.index()].fetch_add(1, Ordering::Relaxed);
        self.faults.check(method, role)
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
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(Default::default)
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
