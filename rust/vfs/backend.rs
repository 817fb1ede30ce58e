//! The interception point for data operations on real files.
//!
//! Every `xRead`, `xWrite`, `xTruncate`, `xSync`, `xFileSize` and `xClose` that
//! the shim lets through (after accounting and fault checks) reaches the real
//! VFS through exactly one function here, and so does the crash simulator's
//! view of `xDelete`. When the file belongs to a database with an active crash
//! plan and is one of its simulated files (main db, journal, WAL), the call is
//! handed to [`super::crash`], with the real file behind it as a `RealFile`
//! (the simulator's `Disk`); otherwise it is forwarded unchanged.

use std::os::raw::{c_int, c_void};

use rusqlite::ffi;

use super::crash::{file_index, CrashSlot};
use super::faults::FileRole;
use super::file::{RealFile, ShimFile};
use super::inner::inner_call;
use super::state::DbState;

/// The crash slot and simulated-file index of `h`, if a plan is active for it.
#[inline]
fn simulated(h: &ShimFile) -> Option<(&CrashSlot, usize)> {
    let s = h.db()?;
    if !s.crash.active() {
        return None;
    }
    Some((&s.crash, file_index(h.role)?))
}

/// Reads `amt` bytes at `off` from the real file into `buf`.
/// # Safety
/// `inner` must be the live inner file of the open [`ShimFile`] `h`, and the
/// pointer arguments valid as SQLite's VFS contract requires for this method.
#[inline]
pub(crate) unsafe fn read(
    h: &ShimFile,
    inner: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    if let (Some((c, i)), false) = (simulated(h), buf.is_null() || amt < 0 || off < 0) {
        // SAFETY: per the contract `inner` is live and `buf` holds `amt`
        // writable bytes for the duration of this call.
        let (real, buf) = unsafe {
            (
                RealFile::new(inner),
                std::slice::from_raw_parts_mut(buf as *mut u8, amt as usize),
            )
        };
        return c.read(i, &real, buf, off as u64);
    }
    inner_call!(inner, 1, xRead, ffi::SQLITE_IOERR_READ, buf, amt, off)
}

/// Writes `amt` bytes from `buf` at `off` to the real file.
/// # Safety
/// `inner` must be the live inner file of the open [`ShimFile`] `h`, and the
/// pointer arguments valid as SQLite's VFS contract requires for this method.
#[inline]
pub(crate) unsafe fn write(
    h: &ShimFile,
    inner: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    if let (Some((c, i)), false) = (simulated(h), buf.is_null() || amt < 0 || off < 0) {
        // SAFETY: per the contract `inner` is live and `buf` holds `amt`
        // readable bytes for the duration of this call.
        let (real, data) = unsafe {
            (
                RealFile::new(inner),
                std::slice::from_raw_parts(buf as *const u8, amt as usize),
            )
        };
        return c.write(i, &real, data, off as u64);
    }
    inner_call!(inner, 1, xWrite, ffi::SQLITE_IOERR_WRITE, buf, amt, off)
}

/// Truncates the real file to `size` bytes.
/// # Safety
/// `inner` must be the live inner file of the open [`ShimFile`] `h`, and the
/// pointer arguments valid as SQLite's VFS contract requires for this method.
#[inline]
pub(crate) unsafe fn truncate(
    h: &ShimFile,
    inner: *mut ffi::sqlite3_file,
    size: ffi::sqlite3_int64,
) -> c_int {
    if let (Some((c, i)), true) = (simulated(h), size >= 0) {
        // SAFETY: per the contract `inner` is live.
        let real = unsafe { RealFile::new(inner) };
        return c.truncate(i, &real, size as u64);
    }
    inner_call!(inner, 1, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size)
}

/// Syncs the real file (`flags` as given to `xSync`).
/// # Safety
/// `inner` must be the live inner file of the open [`ShimFile`] `h`, and the
/// pointer arguments valid as SQLite's VFS contract requires for this method.
#[inline]
pub(crate) unsafe fn sync(h: &ShimFile, inner: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    if let Some((c, i)) = simulated(h) {
        // SAFETY: per the contract `inner` is live.
        let real = unsafe { RealFile::new(inner) };
        return c.sync(i, &real, flags);
    }
    inner_call!(inner, 1, xSync, ffi::SQLITE_IOERR_FSYNC, flags)
}

/// Stores the real file's size in `*out`.
/// # Safety
/// `inner` must be the live inner file of the open [`ShimFile`] `h`, and the
/// pointer arguments valid as SQLite's VFS contract requires for this method.
#[inline]
pub(crate) unsafe fn file_size(
    h: &ShimFile,
    inner: *mut ffi::sqlite3_file,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    if let (Some((c, i)), false) = (simulated(h), out.is_null()) {
        // SAFETY: per the contract `inner` is live.
        let real = unsafe { RealFile::new(inner) };
        return match c.file_size(i, &real) {
            Ok(n) => {
                // SAFETY: `out` is SQLite's valid, non-null out-pointer.
                unsafe { *out = n as ffi::sqlite3_int64 };
                ffi::SQLITE_OK
            }
            Err(rc) => rc,
        };
    }
    inner_call!(inner, 1, xFileSize, ffi::SQLITE_IOERR_FSTAT, out)
}

/// Closes the real file. Called exactly once per successfully opened file.
/// Pending operations of a simulated file outlive its handle (they belong to
/// the path), so closing needs no crash logic.
/// # Safety
/// `inner` must be the live inner file of the open [`ShimFile`] `_h`, and the
/// pointer arguments valid as SQLite's VFS contract requires for this method.
#[inline]
pub(crate) unsafe fn close(_h: &ShimFile, inner: *mut ffi::sqlite3_file) -> c_int {
    inner_call!(inner, 1, xClose, ffi::SQLITE_OK)
}

/// Asks the crash simulator about an `xDelete` of a file of `s` with `role`:
/// `Some(code)` refuses it (the database has crashed), `None` lets it run.
pub(crate) fn delete(s: &DbState, role: FileRole) -> Option<c_int> {
    if !s.crash.active() {
        return None;
    }
    s.crash.delete(file_index(role)?)
}

/// True if `s` has an active crash plan: memory maps and size hints, which
/// would bypass the simulator, are then refused / ignored by the shim.
#[inline]
pub(crate) fn bypass_blocked(s: Option<&DbState>) -> bool {
    s.is_some_and(|s| s.crash.active())
}
