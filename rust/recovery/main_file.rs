//! A connection's main database file reached through its own VFS methods.
//!
//! Backup, restore and quarantine copy a database byte for byte through the
//! `sqlite3_file` SQLite (and the memtree VFS) holds open, so the bytes come
//! from the very inode the connection has open, never from a path looked up
//! again. This module finds that file and wraps the methods they share,
//! starts the online backup (restore, quarantine) whose first step takes
//! the file's write lock before the copy is made, and makes the durable
//! copy aside both take under that lock ([`copy_aside`]).

use std::ffi::{c_int, c_void, CStr};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::ptr;
use std::time::{Duration, Instant};

use rusqlite::{ffi, Connection};

use crate::error::{Error, Result};
use crate::recovery::copy_faults::{self, CopyOp};
use crate::sys::files::sync_parent_dir;

const MAIN: &CStr = c"main";
/// The size of each read of the database while it is copied aside.
const COPY_CHUNK: usize = 64 * 1024;

/// The main database file of `conn`: reads and writes through it reach the
/// very inode the connection has open. A file SQLite cannot give is a
/// CANTOPEN error for `path` under `context`.
pub(crate) fn main_file(
    conn: &Connection,
    path: &Path,
    context: &str,
) -> Result<*mut ffi::sqlite3_file> {
    let mut file: *mut ffi::sqlite3_file = ptr::null_mut();
    // SAFETY: FILE_POINTER writes one pointer into `file`.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            MAIN.as_ptr(),
            ffi::SQLITE_FCNTL_FILE_POINTER,
            (&mut file as *mut *mut ffi::sqlite3_file).cast::<c_void>(),
        )
    };
    // SAFETY: a non-null file from SQLite has a methods table while open.
    if rc != ffi::SQLITE_OK || file.is_null() || unsafe { (*file).pMethods.is_null() } {
        return Err(crate::vfs::sqlite_or_refused(
            context,
            path,
            rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_CANTOPEN), None),
        ));
    }
    Ok(file)
}

/// Reads `buf.len()` bytes at `offset` from `file` (a short read is
/// SQLITE_IOERR_SHORT_READ, the rest of `buf` zeroed by the VFS).
pub(crate) fn read_at(file: *mut ffi::sqlite3_file, buf: &mut [u8], offset: u64) -> c_int {
    // SAFETY: `file` is an open sqlite3_file (see `main_file`) whose
    // connection outlives the call; xRead fills at most `buf.len()` bytes.
    unsafe {
        match (*(*file).pMethods).xRead {
            Some(read) => read(
                file,
                buf.as_mut_ptr().cast::<c_void>(),
                buf.len() as c_int,
                offset as i64,
            ),
            None => ffi::SQLITE_IOERR_READ,
        }
    }
}

/// The size of `file` in bytes, or the result code of its xFileSize.
pub(crate) fn file_size(file: *mut ffi::sqlite3_file) -> std::result::Result<u64, c_int> {
    let mut size: ffi::sqlite3_int64 = 0;
    // SAFETY: as in `read_at`; xFileSize writes one integer.
    let rc = unsafe {
        match (*(*file).pMethods).xFileSize {
            Some(f) => f(file, &mut size),
            None => ffi::SQLITE_IOERR_FSTAT,
        }
    };
    if rc == ffi::SQLITE_OK {
        Ok(size.max(0) as u64)
    } else {
        Err(rc)
    }
}

/// Starts SQLite's online backup of `source` into `dest` (both "main") and
/// runs its first one-page step, which takes `dest`'s write lock: SQLite
/// does not wait for that lock when another connection holds RESERVED (it
/// would deadlock), so BUSY and LOCKED are retried here, from no lock,
/// until `timeout` has passed. Returns the backup and the first step's
/// result code (OK: the lock is held and nothing is written yet); the
/// caller finishes the backup on every path. Err: the extended code of a
/// backup that could not start (nothing to finish).
pub(crate) fn start_backup(
    dest: &Connection,
    source: &Connection,
    timeout: Duration,
) -> std::result::Result<(*mut ffi::sqlite3_backup, c_int), c_int> {
    // SAFETY: both handles are open connections that outlive the backup;
    // "main" is NUL-terminated.
    let backup = unsafe {
        ffi::sqlite3_backup_init(dest.handle(), MAIN.as_ptr(), source.handle(), MAIN.as_ptr())
    };
    if backup.is_null() {
        // SAFETY: the handle is valid; the error is the backup_init's.
        return Err(unsafe { ffi::sqlite3_extended_errcode(dest.handle()) });
    }
    let deadline = Instant::now() + timeout;
    let first = loop {
        // SAFETY: `backup` is live until the caller finishes it.
        let rc = unsafe { ffi::sqlite3_backup_step(backup, 1) };
        if !matches!(rc & 0xff, ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED) || Instant::now() >= deadline
        {
            break rc;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok((backup, first))
}

/// Copies the main file of `conn` (the database at `db`) byte for byte,
/// through the connection's own file handle, into a file `create` makes
/// (exclusively, at a fresh name beside `db`), fsyncs the copy and syncs
/// the folder; returns the copy's path. The caller holds the file's write
/// lock, so the copy is the image it is about to replace. `what`
/// ("restore", "quarantine") starts every error's context. The plain file
/// I/O passes the copy's fault seam ([`copy_faults`]); a partial copy is
/// removed on failure.
pub(crate) fn copy_aside(
    conn: &Connection,
    db: &Path,
    what: &str,
    create: impl FnOnce() -> Result<(PathBuf, File)>,
) -> Result<PathBuf> {
    let file = main_file(conn, db, &format!("{what}: find the file"))?;
    let (aside, mut out) = create()?;
    let copied = (|| -> Result<()> {
        let failed = |step: &str, rc: c_int| {
            crate::vfs::sqlite_or_refused(
                &format!("{what}: {step}"),
                db,
                rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None),
            )
        };
        let size = file_size(file).map_err(|rc| failed("size the file", rc))?;
        let mut buf = vec![0u8; COPY_CHUNK];
        let mut offset = 0u64;
        while offset < size {
            let n = COPY_CHUNK.min((size - offset) as usize);
            let rc = read_at(file, &mut buf[..n], offset);
            if rc != ffi::SQLITE_OK {
                return Err(failed("read the file", rc));
            }
            copy_faults::check(db, CopyOp::Write)
                .and_then(|()| out.write_all(&buf[..n]))
                .map_err(|e| Error::io(&format!("{what}: write the copy"), &aside, e))?;
            offset += n as u64;
        }
        copy_faults::check(db, CopyOp::Sync)
            .and_then(|()| out.sync_all())
            .map_err(|e| Error::io(&format!("{what}: sync the copy"), &aside, e))?;
        copy_faults::check(db, CopyOp::SyncDir)
            .map_err(|e| Error::io("sync the database folder", db, e))?;
        sync_parent_dir(db)
    })();
    if let Err(e) = copied {
        drop(out);
        let _ = std::fs::remove_file(&aside);
        return Err(e);
    }
    Ok(aside)
}
