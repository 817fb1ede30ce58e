//! The interception point for data operations on real files.
//!
//! Every `xRead`, `xWrite`, `xTruncate`, `xSync`, `xFileSize` and `xClose` that
//! the shim lets through (after accounting and fault checks) reaches the real
//! VFS through exactly one function here. Today each one forwards. A crash
//! simulator hooks in here: it can keep writes/truncates of db and journal files
//! pending (by [`ShimFile::role`] and [`ShimFile::db`]), serve reads and file
//! sizes from that pending state, and decide at a sync what reaches the disk.

use std::os::raw::{c_int, c_void};

use rusqlite::ffi;

use super::shim::{inner_call, ShimFile};

/// Reads `amt` bytes at `off` from the real file into `buf`.
/// # Safety
/// `inner` must be the live inner file of the open [`ShimFile`] `_h`, and the
/// pointer arguments valid as SQLite's VFS contract requires for this method.
#[inline]
pub(crate) unsafe fn read(
    _h: &ShimFile,
    inner: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    inner_call!(inner, 1, xRead, ffi::SQLITE_IOERR_READ, buf, amt, off)
}

/// Writes `amt` bytes from `buf` at `off` to the real file.
/// # Safety
/// `inner` must be the live inner file of the open [`ShimFile`] `_h`, and the
/// pointer arguments valid as SQLite's VFS contract requires for this method.
#[inline]
pub(crate) unsafe fn write(
    _h: &ShimFile,
    inner: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    inner_call!(inner, 1, xWrite, ffi::SQLITE_IOERR_WRITE, buf, amt, off)
}

/// Truncates the real file to `size` bytes.
/// # Safety
/// `inner` must be the live inner file of the open [`ShimFile`] `_h`, and the
/// pointer arguments valid as SQLite's VFS contract requires for this method.
#[inline]
pub(crate) unsafe fn truncate(
    _h: &ShimFile,
    inner: *mut ffi::sqlite3_file,
    size: ffi::sqlite3_int64,
) -> c_int {
    inner_call!(inner, 1, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size)
}

/// Syncs the real file (`flags` as given to `xSync`).
/// # Safety
/// `inner` must be the live inner file of the open [`ShimFile`] `_h`, and the
/// pointer arguments valid as SQLite's VFS contract requires for this method.
#[inline]
pub(crate) unsafe fn sync(_h: &ShimFile, inner: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    inner_call!(inner, 1, xSync, ffi::SQLITE_IOERR_FSYNC, flags)
}

/// Stores the real file's size in `*out`.
/// # Safety
/// `inner` must be the live inner file of the open [`ShimFile`] `_h`, and the
/// pointer arguments valid as SQLite's VFS contract requires for this method.
#[inline]
pub(crate) unsafe fn file_size(
    _h: &ShimFile,
    inner: *mut ffi::sqlite3_file,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    inner_call!(inner, 1, xFileSize, ffi::SQLITE_IOERR_FSTAT, out)
}

/// Closes the real file. Called exactly once per successfully opened file.
/// # Safety
/// `inner` must be the live inner file of the open [`ShimFile`] `_h`, and the
/// pointer arguments valid as SQLite's VFS contract requires for this method.
#[inline]
pub(crate) unsafe fn close(_h: &ShimFile, inner: *mut ffi::sqlite3_file) -> c_int {
    inner_call!(inner, 1, xClose, ffi::SQLITE_OK)
}
