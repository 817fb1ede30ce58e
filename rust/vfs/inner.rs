//! One call of a method of a real (inner) file's table: the leaf every layer
//! of the VFS forwards through (`state` unlocks inherited files with it,
//! `file` and `backend` forward SQLite's calls). It imports nothing of the
//! VFS, so it sits under all of it.

/// Calls a method of the inner file's table, or evaluates `$missing` when the
/// inner table is older than `$ver` or has a null pointer there.
macro_rules! inner_call {
    ($inner:expr, $ver:expr, $m:ident, $missing:expr $(, $arg:expr)*) => {{
        let inner: *mut rusqlite::ffi::sqlite3_file = $inner;
        // SAFETY: `inner` is an open file of the real VFS: its pMethods was
        // checked non-null in xOpen and stays valid until its xClose.
        let methods = unsafe { &*(*inner).pMethods };
        match methods.$m {
            // SAFETY: forwards the call SQLite made on the outer file, with the
            // same arguments (valid per SQLite's VFS contract), to the inner file.
            Some(x) if methods.iVersion >= $ver => unsafe { x(inner $(, $arg)*) },
            _ => $missing,
        }
    }};
}
pub(crate) use inner_call;
