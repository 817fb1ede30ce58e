//! The shim's file types and the forwarding to the real VFS: the layer under
//! the forwarding (`shim` → `backend` → `file`), over the one-call leaf
//! [`inner_call!`](inner_call) in `inner`.
//!
//! - [`ShimFile`]: the header the shim places in front of each real file, and
//!   [`parts`] / [`inner_of`] to find the real file behind it;
//! - [`RealFile`]: the real file as the crash simulator sees it (its
//!   [`Disk`] implementation).

use std::mem::size_of;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rusqlite::ffi;

use super::crash::Disk;
use super::faults::{FileRole, VfsMethod};
use super::inner::inner_call;
use super::state::DbState;

/// The header placed in front of the real VFS's file.
#[repr(C)]
pub(crate) struct ShimFile {
    /// Must stay first: SQLite sees this as the `sqlite3_file`.
    pub(crate) base: ffi::sqlite3_file,
    /// The database this file belongs to; `None` for unnamed temp files.
    pub(crate) state: Option<Arc<DbState>>,
    /// What the file is, from the `xOpen` flags.
    pub(crate) role: FileRole,
    /// The `xOpen` flags.
    pub(crate) open_flags: c_int,
    /// True until the first successful `xSync` of a journal/WAL/super-journal
    /// opened with `SQLITE_OPEN_CREATE` (where the unix VFS also fsyncs the
    /// directory).
    pub(crate) dir_sync_pending: AtomicBool,
}

/// Size of [`ShimFile`], which is a multiple of its (pointer) alignment, so the
/// inner file that follows it is pointer-aligned too.
pub(crate) const HDR_SIZE: usize = size_of::<ShimFile>();
const _: () = assert!(std::mem::align_of::<ShimFile>() >= std::mem::align_of::<*const u8>());

impl ShimFile {
    /// The database state, if the file has one.
    #[inline]
    pub(crate) fn db(&self) -> Option<&DbState> {
        self.state.as_deref()
    }

    /// Counts a call of `method`; `Some(code)` if an injected fault fails it.
    #[inline]
    pub(crate) fn enter(&self, method: VfsMethod) -> Option<i32> {
        self.db().and_then(|s| s.enter(method, self.role))
    }
}

/// Splits an outer file into its header and the inner (real) file.
///
/// # Safety
/// `f` must be a file opened by the shim's `xOpen` and not yet closed; SQLite only
/// calls io methods on such files, one call at a time per file.
#[inline]
pub(crate) unsafe fn parts<'a>(
    f: *mut ffi::sqlite3_file,
) -> (&'a ShimFile, *mut ffi::sqlite3_file) {
    // SAFETY: per the contract, `f` points at a live, initialised ShimFile of
    // szOsFile bytes; the inner file starts HDR_SIZE bytes in.
    unsafe { (&*(f as *const ShimFile), inner_of(f)) }
}

/// The inner file of an outer file (pointer arithmetic only).
#[inline]
pub(crate) fn inner_of(f: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    (f as *mut u8).wrapping_add(HDR_SIZE) as *mut ffi::sqlite3_file
}

/// The real (inner) file of a shim file, for the calls the simulator makes.
pub(crate) struct RealFile(*mut ffi::sqlite3_file);

impl RealFile {
    /// Wraps the inner file.
    ///
    /// # Safety
    /// `inner` must be the live, open inner file of a shim file for as long as
    /// the wrapper is used, on the thread SQLite called us on.
    pub(crate) unsafe fn new(inner: *mut ffi::sqlite3_file) -> Self {
        RealFile(inner)
    }
}

/// The simulator reaches the real file only through these, each one call of
/// the inner file's method table.
impl Disk for RealFile {
    fn read(&self, buf: &mut [u8], off: u64) -> c_int {
        let p = buf.as_mut_ptr() as *mut c_void;
        let n = buf.len() as c_int;
        inner_call!(self.0, 1, xRead, ffi::SQLITE_IOERR_READ, p, n, off as i64)
    }

    fn write(&self, data: &[u8], off: u64) -> c_int {
        let p = data.as_ptr() as *const c_void;
        let n = data.len() as c_int;
        inner_call!(self.0, 1, xWrite, ffi::SQLITE_IOERR_WRITE, p, n, off as i64)
    }

    fn truncate(&self, size: u64) -> c_int {
        inner_call!(
            self.0,
            1,
            xTruncate,
            ffi::SQLITE_IOERR_TRUNCATE,
            size as i64
        )
    }

    fn sync(&self, flags: c_int) -> c_int {
        inner_call!(self.0, 1, xSync, ffi::SQLITE_IOERR_FSYNC, flags)
    }

    fn size(&self) -> Result<u64, c_int> {
        let mut out: ffi::sqlite3_int64 = 0;
        let p: *mut ffi::sqlite3_int64 = &mut out;
        match inner_call!(self.0, 1, xFileSize, ffi::SQLITE_IOERR_FSTAT, p) {
            ffi::SQLITE_OK => Ok(out.max(0) as u64),
            rc => Err(rc),
        }
    }
}
