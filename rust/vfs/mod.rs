//! The `memtree` VFS shim: I/O accounting, fault injection and power-loss
//! simulation over the platform's default SQLite VFS.
//!
//! [`register`] adds a VFS named `"memtree"` (never the default) that wraps
//! `sqlite3_vfs_find(NULL)`. Connections opt in by name, e.g.
//! `Connection::open_with_flags_and_vfs(path, flags, "memtree")`. Everything
//! works as with the default VFS, WAL and shared memory included; in addition:
//!
//! - **Accounting** ([`io_stats`], [`reset_io_stats`]): per main-database path,
//!   counts opens, reads, writes, truncates, syncs by file role, the directory
//!   fsyncs the unix VFS performs inside other calls, deletes and `xShmMap`s.
//!   The key is the main database's path as SQLite opened it (callers pass an
//!   absolute canonical path); `-journal`, `-wal` and super-journal (`-mjXXXX`)
//!   files count towards their main database; unnamed temp files count nowhere.
//! - **Fault injection** ([`inject_fault`], [`clear_fault`], [`faults_fired`],
//!   [`method_calls`]): fail the nth call of one method for one database, once
//!   or from then on, with a chosen extended result code; [`inject_faults`]
//!   chains several, each counting from the call after its predecessor fired.
//! - **Power-loss simulation** ([`arm_crash`], [`crash_state`],
//!   [`sync_count_since_arm`], [`disarm_crash`]): keep a database's writes
//!   pending until its files are synced and, at the nth sync (or write), lose
//!   power: each pending write is written, dropped or torn at random. See the
//!   `crash` module for the exact rules.
//!
//! Layout, top to bottom (each module imports only from those below it):
//! `shim` (raw FFI: VFS and io-method tables, registration), `backend` (the
//! one place where reads, writes, truncates, syncs, file sizes and closes
//! reach the real files — it hands simulated files to `crash`), `file` (the
//! shim's file header, the forwarding to the real file, and the real file as
//! the simulator's `Disk`), `state` (per-database state and the path
//! registry), `crash` (pending writes, the overlay, the power loss, over any
//! `Disk`), `stats` (counters) and `faults` (method names, roles, fault slot).
//!
//! Measured sync counts per commit (SQLite 3.50, Linux, see the tests):
//! TRUNCATE journal + `synchronous=FULL`: 4 `xSync` (journal ×3, db ×1) plus
//! 1 directory fsync (the journal is reopened with `SQLITE_OPEN_CREATE` each
//! transaction); DELETE + FULL: 3 `xSync` (journal ×2, db ×1) + 1 directory
//! fsync; WAL + FULL: 1 WAL `xSync` per commit in steady state; WAL + NORMAL:
//! 0 per commit in steady state. The first commit into a new `-wal` adds the
//! WAL-header sync (FULL: 2 WAL syncs, NORMAL: 1) and one directory fsync; the
//! checkpoint at the last close syncs the WAL and the db once each.
//!
//! Notes and limitations:
//! - `syncs_dir` is inferred from the unix VFS's rules (it is not a call of its
//!   own); it is always 0 on non-unix platforms, and would be wrong for a build
//!   with `SQLITE_DISABLE_DIRSYNC`.
//! - [`IoStats`] counts calls forwarded to the real VFS; faulted calls appear
//!   only in [`method_calls`].
//! - `xFileControl`, `xSectorSize`, `xDeviceCharacteristics`, `xShmBarrier`,
//!   `xFetch` and `xUnfetch` are forwarded without counting or faults. For a
//!   crash plan is active for the database, `SQLITE_FCNTL_SIZE_HINT` (via
//!   `xFileControl`) is ignored and `xFetch` maps nothing, since both would
//!   bypass `backend` (a hint can grow a file; a mapping reads the real file).
//! - `xDelete`/`xAccess` take the role from the name's suffix; the unix VFS
//!   removes `-shm` itself, not through `xDelete`. `xShmMap`/`xShmLock`/
//!   `xShmUnmap` run on the main db file (role [`FileRole::MainDb`]).
//! - The per-path registry never forgets a path (a few hundred bytes each).

mod backend;
mod crash;
mod faults;
mod file;
mod inner;
mod refusal;
mod shim;
mod state;
mod stats;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use crash::{CrashAction, CrashPlan, CrashReport, CrashState};
pub use faults::{Fault, FileRole, UnknownVfsMethod, VfsMethod};
#[cfg(unix)]
pub use stats::IoStats;

pub use refusal::{refused_open_or, sqlite_or_refused, OrRefused};
pub use shim::VFS_NAME;

/// Registers the `memtree` VFS (not as the default). Idempotent and
/// thread-safe; returns SQLite's error code if registration fails (a later call
/// tries again).
pub fn register() -> Result<(), i32> {
    // Before any file can be noted in the open-file list: a fork must find
    // the list held, never half-updated.
    #[cfg(unix)]
    crate::sys::fork::hold_across_fork(state::fork_prepare, state::fork_release);
    shim::register()
}

/// The I/O counters of the database at `db_path` (all zero if it was never
/// opened through the shim).
pub fn io_stats(db_path: &Path) -> IoStats {
    state::existing(db_path).map_or_else(IoStats::default, |s| s.counters.snapshot())
}

/// Sets the I/O counters and the per-method call counts of `db_path` to zero.
/// An armed fault stays armed (its own call counter is not reset).
pub fn reset_io_stats(db_path: &Path) {
    if let Some(s) = state::existing(db_path) {
        s.counters.reset();
        s.reset_calls();
    }
}

/// Arms `fault` for the database at `db_path`, replacing any armed fault and
/// resetting the fault's call counter, its fired count and [`method_calls`].
pub fn inject_fault(db_path: &Path, fault: Fault) {
    inject_faults(db_path, vec![fault]);
}

/// Arms a chain of faults for `db_path`: the first now, each next one when its
/// predecessor (which must then be one-shot) fires, counting from the call
/// after that. Replaces any armed fault and resets the fired count (summed
/// over the chain) and [`method_calls`]. An empty chain disarms.
pub fn inject_faults(db_path: &Path, faults: Vec<Fault>) {
    let s = state::state_for(db_path);
    s.reset_calls();
    s.faults.arm_chain(faults);
}

/// Disarms the fault of `db_path`; returns how many calls it failed.
pub fn clear_fault(db_path: &Path) -> u64 {
    state::existing(db_path).map_or(0, |s| s.faults.disarm())
}

/// How many calls the current (or last cleared) fault of `db_path` failed.
pub fn faults_fired(db_path: &Path) -> u64 {
    state::existing(db_path).map_or(0, |s| s.faults.fired())
}

/// Calls of `method` on files of `db_path` (failed ones included) since the
/// last [`inject_fault`] or [`reset_io_stats`] (or since the first open).
pub fn method_calls(db_path: &Path, method: VfsMethod) -> u64 {
    state::existing(db_path).map_or(0, |s| {
        s.calls[method.index()].load(std::sync::atomic::Ordering::Relaxed)
    })
}

/// The last file of `db_path` the VFS's `xOpen` refused because a
/// non-regular file (FIFO, device, socket, directory, link) stood at its
/// name — possibly planted after the store opened — and the code it failed
/// with; `None` if none was refused. SQLite reports such a refusal as its
/// own `CANTOPEN`, which on its own reads as transient; the store's error
/// mapping asks here to report the refusal instead (see
/// [`crate::sys::path_guard::refused_after_open`]).
pub fn refused_open(db_path: &Path) -> Option<(std::path::PathBuf, i32)> {
    state::existing(db_path).and_then(|s| {
        s.refused_open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    })
}

/// Arms a simulated power loss for the database at `db_path` (keyed like
/// [`inject_fault`]): from now on its main-db, journal and WAL writes stay
/// pending until synced, and power is lost as `plan` says. Files opened later
/// inherit the plan. Pending writes of a previously armed plan are written out
/// first; a previous crash is forgotten.
pub fn arm_crash(db_path: &Path, plan: CrashPlan) {
    state::state_for(db_path).crash.arm(db_path, plan);
}

/// The crash-simulation state of `db_path`.
pub fn crash_state(db_path: &Path) -> CrashState {
    state::existing(db_path).map_or(CrashState::Disarmed, |s| s.crash.state())
}

/// Syncs of `db_path`'s simulated files since [`arm_crash`] (the crash sync
/// included; 0 when disarmed). A run that ends armed with `n` syncs seen had
/// crash points `1..=n`.
pub fn sync_count_since_arm(db_path: &Path) -> u64 {
    crash_state(db_path).syncs_seen()
}

/// Disarms the crash plan of `db_path` and reports what happened; `None` if
/// none was armed. Without a crash, pending writes are written out in order.
/// After a [`CrashAction::Freeze`] crash, close the database's connections
/// first: once disarmed, their I/O reaches the disk again. All pending state is
/// freed.
pub fn disarm_crash(db_path: &Path) -> Option<CrashReport> {
    state::existing(db_path).and_then(|s| s.crash.disarm())
}
