//! `backup`: an online, consistent copy of a live store, written where no
//! reader can mistake it for a finished one until it is.
//!
//! 1. The destination is refused, unchanged, if anything exists at it or at
//!    its side-file names (`-journal`, `-wal`): a backup never replaces a
//!    file, and never leaves a new database beside a journal it did not
//!    write. Its folder must exist.
//! 2. `<dest>.partial` is created exclusively (a leftover of a crashed
//!    backup is refused, never adopted or removed: the caller removes it).
//! 3. A connection to the live file opens one read transaction (`BEGIN`,
//!    then a read), notes the schema version and every stored table's row
//!    count, and copies the database inside that same transaction: the copy
//!    is the snapshot of one moment, every committed transaction in it or
//!    not. In a rollback-journal mode (memtree's TRUNCATE) the transaction's
//!    SHARED lock keeps every other connection, of any process, from
//!    writing the file until it ends (a writer may fill its journal, but
//!    needs EXCLUSIVE to touch the database), so the file's first
//!    `page_count × page_size` bytes *are* that snapshot: they are copied
//!    byte for byte, in 64 KiB blocks, through the memtree VFS (the same
//!    counted, faultable reads and writes as every other file access), all
//!    but the lock-byte page at 1 GiB, which SQLite never uses and leaves
//!    zero in a copy (on Windows its locks are mandatory: not readable). A
//!    file in WAL mode (whose committed pages may sit in its `-wal`) is
//!    copied page by page with SQLite's online backup API in one step
//!    instead. Writers wait for the read lock like for any reader (their
//!    busy timeout applies), so the copy holds a prefix of the committed
//!    history.
//! 4. The read transaction ends (writers go on: the copy needs no lock of
//!    the store), and the copy is synced while it is verified on fresh
//!    read-only connections: `integrity_check` (split over two connections
//!    when a second core can run it: see [`verify_while`]), the schema
//!    version and every row count equal to the snapshot's. The checks read
//!    the bytes the sync writes out, from the page cache, as they would
//!    after it; the copy is published only once both succeeded.
//! 5. It is linked to `dest` (`link(2)`: fails if `dest` appeared
//!    meanwhile, never replaces it), the temporary name is removed and the
//!    folder synced.
//!
//! On any failure the partial copy (ours: created exclusively) is removed
//! and the live store is unchanged (it was only read). A FIFO, device,
//! socket, folder or link planted at a side-file name of the store or of
//! the copy once the backup runs is reported by name as the permanent
//! [`Error::PathRefused`] (every SQLite error here is built with
//! [`sqlite_or_refused`]), not as SQLite's transient `CANTOPEN`.

use std::ffi::{c_int, c_void};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{ffi, Connection, OpenFlags};

use crate::error::{Error, Result};
use crate::recovery::main_file::{main_file, read_at};
use crate::sys::files::create_exclusive;
use crate::sys::files::side_file;
use crate::sys::files::sync_parent_dir;
use crate::vfs::sqlite_or_refused;

/// How long the copy waits for a writer's lock before giving up (BUSY).
pub const BACKUP_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes per read and per write of the byte copy: large enough that the
/// per-call cost (system call, VFS accounting) is lost in the copying, and
/// within what the unix VFS writes in one call (it masks a write's length
/// to 17 bits: a longer one would be cut and reported as SQLITE_FULL).
const COPY_CHUNK: usize = 64 * 1024;

/// SQLite's lock bytes start at this offset (1 GiB) in every database file;
/// the page holding them (the "lock-byte page" of a file over 1 GiB) is
/// never read or written by SQLite: on Windows the locks are mandatory, so
/// reading it while another handle holds a lock fails.
const PENDING_BYTE: u64 = 0x4000_0000;

/// The parts of the block `[offset, offset + len)` to read from the store,
/// as `(start, end)` offsets within the block: all of it, less the
/// lock-byte page (`[PENDING_BYTE, PENDING_BYTE + page_size)`), which the
/// copy leaves zero as SQLite's own backup does.
fn readable_parts(offset: u64, len: u64, page_size: u64) -> Vec<(usize, usize)> {
    let (lock_start, lock_end) = (PENDING_BYTE, PENDING_BYTE + page_size);
    let end = offset + len;
    let mut parts = Vec::with_capacity(2);
    if offset < lock_start {
        parts.push((0, (end.min(lock_start) - offset) as usize));
    }
    if end > lock_end {
        parts.push(((offset.max(lock_end) - offset) as usize, len as usize));
    }
    parts.retain(|(a, b)| a < b);
    parts
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The finished backup.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its schema version (`user_version`).
    pub schema_version: i64,
    /// Rows per table, as verified in the copy.
    pub rows: Vec<(String, i64)>,
}

/// The error for the result code `rc` of a VFS method or of the backup
/// API on the database at `path`, or the refusal behind it: a step of the
/// backup API opens the copy's journal, which a file planted at its name
/// makes a `CANTOPEN` ([`sqlite_or_refused`]). A code memtree chose itself
/// (a failed check's CORRUPT) is never a refusal and passes through as is.
pub(crate) fn sqlite_err(context: &str, path: &Path, rc: c_int) -> Error {
    sqlite_or_refused(
        context,
        path,
        rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None),
    )
}

fn refused(path: &Path, code: c_int, reason: impl Into<String>) -> Error {
    Error::PathRefused {
        path: path.to_owned(),
        code,
        reason: reason.into(),
    }
}

/// Refuses `dest` if anything exists at it or its side-file names, or its
/// folder is missing.
pub(crate) fn check_free_destination(dest: &Path) -> Result<()> {
    for suffix in [
        "",
        "-journal",
        "-wal",
        "-shm",
        ".partial",
        ".partial-journal",
    ] {
        let p = side_file(dest, suffix);
        if fs::symlink_metadata(&p).is_ok() {
            let what = if suffix.is_empty() {
                "a file already exists at the destination; a backup never replaces one".to_owned()
            } else {
                format!(
                    "{} exists beside the destination (a leftover of an earlier run?); \
                     remove it first",
                    p.display()
                )
            };
            return Err(refused(dest, ffi::SQLITE_CANTOPEN, what));
        }
    }
    let folder = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !fs::metadata(folder).is_ok_and(|m| m.is_dir()) {
        return Err(refused(
            dest,
            ffi::SQLITE_CANTOPEN,
            format!("the folder {} does not exist", folder.display()),
        ));
    }
    Ok(())
}

/// A connection through the memtree VFS (so its I/O is counted and can be
/// faulted like the store's), trusting no schema, waiting for locks.
pub(crate) fn open_vfs(path: &Path, flags: OpenFlags, context: &str) -> Result<Connection> {
    crate::vfs::register().map_err(|code| sqlite_err("register the memtree VFS", path, code))?;
    let conn = Connection::open_with_flags_and_vfs(
        path,
        flags | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        crate::vfs::VFS_NAME,
    )
    .map_err(|e| sqlite_or_refused(context, path, e))?;
    conn.busy_timeout(BACKUP_BUSY_TIMEOUT)
        .map_err(|e| sqlite_or_refused(context, path, e))?;
    crate::schema::distrust_schema(&conn, path)?;
    Ok(conn)
}

/// Every table's row count, by table name.
pub type RowCounts = Vec<(String, i64)>;

/// Schema version and the row count of every table that stores rows (plain
/// and shadow tables; not virtual tables, whose rows live in those: counting
/// an external-content FTS5 table would scan its content table a second
/// time), in `conn`'s current transaction (or its own, if none is open).
pub(crate) fn census(conn: &Connection, path: &Path) -> Result<(i64, RowCounts)> {
    let err = |e| sqlite_or_refused("backup: count rows", path, e);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    let tables: Vec<String> = {
        let mut stmt = conn
            .prepare(
                "SELECT name FROM pragma_table_list WHERE schema = 'main' \
                 AND type IN ('table', 'shadow') \
                 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
            )
            .map_err(err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)?
    };
    let mut rows = Vec::with_capacity(tables.len());
    for table in tables {
        let quoted = table.replace('"', "\"\"");
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM \"{quoted}\""), [], |r| {
                r.get(0)
            })
            .map_err(err)?;
        rows.push((table, n));
    }
    Ok((version, rows))
}

/// Copies every page of `source` (main) into `dest` (main) with SQLite's
/// online backup API in one step; `dest`'s write is one transaction.
pub(crate) fn copy_pages(source: &Connection, dest: &Connection, path: &Path) -> Result<()> {
    let main = c"main";
    // SAFETY: both handles are open connections that outlive the backup,
    // which is finished below on every path.
    let backup = unsafe {
        ffi::sqlite3_backup_init(dest.handle(), main.as_ptr(), source.handle(), main.as_ptr())
    };
    if backup.is_null() {
        // SAFETY: the handle is valid; the error is the backup_init's.
        let rc = unsafe { ffi::sqlite3_extended_errcode(dest.handle()) };
        return Err(sqlite_err("backup: start", path, rc));
    }
    // SAFETY: `backup` is live until finished just after.
    let step = unsafe { ffi::sqlite3_backup_step(backup, -1) };
    // SAFETY: finishes (and after a failure rolls back) the backup once.
    let finished = unsafe { ffi::sqlite3_backup_finish(backup) };
    if step != ffi::SQLITE_DONE {
        // The step's own code is kept in the destination's error state.
        // SAFETY: as above.
        let rc = unsafe { ffi::sqlite3_extended_errcode(dest.handle()) };
        let rc = if rc == ffi::SQLITE_OK { step } else { rc };
        return Err(sqlite_err("backup: copy the pages", path, rc));
    }
    if finished != ffi::SQLITE_OK {
        return Err(sqlite_err("backup: finish", path, finished));
    }
    Ok(())
}

/// Copies the first `bytes` bytes of `source`'s main file into `dest`'s
/// (an empty file no connection has read or locked) through the files' own
/// VFS methods; [`sync_copy`] syncs them. The caller holds a read
/// transaction on `source`, so no connection writes those bytes meanwhile.
fn copy_file_bytes(
    source: &Connection,
    live: &Path,
    dest: &Connection,
    partial: &Path,
    page_size: u64,
    bytes: u64,
) -> Result<()> {
    let from = main_file(source, live, "backup: find the file")?;
    let to = main_file(dest, partial, "backup: find the file")?;
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut offset = 0u64;
    while offset < bytes {
        let n = COPY_CHUNK.min((bytes - offset) as usize);
        buf[..n].fill(0);
        for (start, end) in readable_parts(offset, n as u64, page_size) {
            // A short read is an error here (SQLITE_IOERR_SHORT_READ): under
            // the read lock the file holds every page the snapshot counts.
            let rc = read_at(from, &mut buf[start..end], offset + start as u64);
            if rc != ffi::SQLITE_OK {
                return Err(sqlite_err("backup: read the store", live, rc));
            }
        }
        // SAFETY: both files are open (main_file) while their connections
        // live, which outlive this call; xWrite reads `n` bytes of `buf`.
        let rc = unsafe {
            match (*(*to).pMethods).xWrite {
                Some(write) => write(to, buf.as_ptr().cast::<c_void>(), n as c_int, offset as i64),
                None => ffi::SQLITE_IOERR_WRITE,
            }
        };
        if rc != ffi::SQLITE_OK {
            return Err(sqlite_err("backup: write the copy", partial, rc));
        }
        offset += n as u64;
    }
    Ok(())
}

/// Syncs the main file of `dest` (the copy at `partial`) through its own
/// VFS method. It needs no lock of the store: it runs after the store's read
/// transaction ended, while the copy is verified (see [`verify_while`]).
fn sync_copy(dest: &Connection, partial: &Path) -> Result<()> {
    let to = main_file(dest, partial, "backup: find the file")?;
    // SAFETY: the file is open (main_file) while `dest` lives, which
    // outlives this call. SYNC_FULL: F_FULLFSYNC on macOS, fsync elsewhere.
    let rc = unsafe {
        match (*(*to).pMethods).xSync {
            Some(sync) => sync(to, ffi::SQLITE_SYNC_FULL),
            None => ffi::SQLITE_IOERR_FSYNC,
        }
    };
    if rc != ffi::SQLITE_OK {
        return Err(sqlite_err("backup: sync the copy", partial, rc));
    }
    Ok(())
}

/// Verifies the database at `path`: whole (`integrity_check`), of
/// `version`, holding `rows`. See [`verify_while`].
pub(crate) fn verify(path: &Path, version: i64, rows: &[(String, i64)]) -> Result<()> {
    verify_while(path, version, rows, verify_split(), || Ok(()))
}

/// Whether the verification is worth splitting over two connections: only
/// with a second core to run them on (split, it does more work in all).
fn verify_split() -> bool {
    std::thread::available_parallelism().map_or(1, usize::from) >= 2
}

/// Verifies the database at `path` on fresh read-only connections, each on
/// a thread of its own, while `meanwhile` runs on the calling thread (the
/// backup syncs the copy meanwhile: the check reads the very bytes the sync
/// writes out, from the page cache, as it would after the sync; the backup
/// is published only once both succeeded). Its first error, else the
/// checks' first, is the result.
///
/// Not `split`: one connection runs `PRAGMA integrity_check`, then the
/// census. `split`: the same checks, on two connections at once:
///
/// - `PRAGMA quick_check`, which is `integrity_check` less its
///   cross-checks of a table against its indexes: the whole-file part (the
///   free list, every page of every b-tree used exactly once, each b-tree's
///   layout and key order), every index's entry count against its table's
///   row count, every row's NOT NULL, type and CHECK constraints, and every
///   virtual table's own check (FTS5's of its index; the built-in modules
///   ignore the quick flag);
/// - `PRAGMA integrity_check(T)` for every table `T` with an index or
///   WITHOUT ROWID, which adds exactly the cross-checks quick_check skips
///   (each row's entry in each index, UNIQUE, the WITHOUT ROWID key order),
///   then the census. Per table it skips the whole-file part (which pages
///   no table uses, the free list), done by the quick_check above.
///
/// So the two together check all `integrity_check` checks (the tables'
/// b-trees twice), and nothing is weaker.
pub(crate) fn verify_while(
    path: &Path,
    version: i64,
    rows: &[(String, i64)],
    split: bool,
    meanwhile: impl FnOnce() -> Result<()>,
) -> Result<()> {
    type Check<'a> = Box<dyn FnOnce() -> Result<()> + Send + 'a>;
    let checks: Vec<Check<'_>> = if split {
        vec![
            Box::new(|| check_whole_file(path)),
            Box::new(|| check_indexes_and_census(path, version, rows)),
        ]
    } else {
        vec![Box::new(|| check_all(path, version, rows))]
    };
    let (during, checks) = std::thread::scope(|scope| {
        // A thread the system refuses is an error of the backup, not a
        // panic; the checks already started are joined all the same.
        let started: Vec<_> = checks
            .into_iter()
            .map(|check| {
                std::thread::Builder::new()
                    .name("memtree-verify".to_owned())
                    .spawn_scoped(scope, check)
                    .map_err(|e| Error::io("backup: start a verification thread", path, e))
            })
            .collect();
        let during = meanwhile();
        let checks: Vec<Result<()>> = started
            .into_iter()
            .map(|check| {
                check?
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        (during, checks)
    });
    during?;
    checks.into_iter().collect()
}

/// A read-only connection to the copy, for one part of its verification.
fn open_check(path: &Path) -> Result<Connection> {
    open_vfs(path, OpenFlags::SQLITE_OPEN_READ_ONLY, "backup: verify")
}

/// Runs an integrity pragma on `conn`: `Ok` if it says `ok`, else a CORRUPT
/// error carrying its findings.
fn run_integrity(conn: &Connection, path: &Path, pragma: &str) -> Result<()> {
    let err = |e| sqlite_or_refused("backup: integrity_check", path, e);
    let lines: Vec<String> = {
        let mut stmt = conn.prepare(pragma).map_err(err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)?
    };
    if lines != ["ok"] {
        return Err(sqlite_err(
            &format!(
                "backup: integrity_check of the copy ({pragma}): {}",
                lines.join("; ")
            ),
            path,
            ffi::SQLITE_CORRUPT,
        ));
    }
    Ok(())
}

/// The copy holds `version` and `rows`, else a CORRUPT error.
fn check_census(
    conn: &Connection,
    path: &Path,
    version: i64,
    rows: &[(String, i64)],
) -> Result<()> {
    let (found_version, found_rows) = census(conn, path)?;
    if found_version != version || found_rows != rows {
        return Err(sqlite_err(
            &format!(
                "backup: the copy holds schema {found_version} and rows {found_rows:?}, \
                 the snapshot schema {version} and rows {rows:?}"
            ),
            path,
            ffi::SQLITE_CORRUPT,
        ));
    }
    Ok(())
}

/// The unsplit verification: `integrity_check`, then the census.
fn check_all(path: &Path, version: i64, rows: &[(String, i64)]) -> Result<()> {
    let conn = open_check(path)?;
    run_integrity(&conn, path, "PRAGMA integrity_check")?;
    check_census(&conn, path, version, rows)
}

/// The first part of the split verification: `quick_check` of the whole file.
fn check_whole_file(path: &Path) -> Result<()> {
    run_integrity(&open_check(path)?, path, "PRAGMA quick_check")
}

/// The second part of the split verification: `integrity_check(T)` of every
/// table with an index or WITHOUT ROWID, then the census.
fn check_indexes_and_census(path: &Path, version: i64, rows: &[(String, i64)]) -> Result<()> {
    let conn = open_check(path)?;
    let err = |e| sqlite_or_refused("backup: list the indexed tables", path, e);
    let tables: Vec<String> = {
        let mut stmt = conn
            .prepare(
                "SELECT name FROM pragma_table_list WHERE schema = 'main' \
                 AND type IN ('table', 'shadow') AND (wr OR name IN \
                 (SELECT tbl_name FROM sqlite_schema WHERE type = 'index')) \
                 ORDER BY name",
            )
            .map_err(err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)?
    };
    for table in tables {
        let quoted = table.replace('"', "\"\"");
        run_integrity(
            &conn,
            path,
            &format!("PRAGMA main.integrity_check(\"{quoted}\")"),
        )?;
    }
    check_census(&conn, path, version, rows)
}

/// Gives the finished file at `from` the name `to` without ever replacing a
/// file there (`link(2)` fails with EEXIST), drops the temporary name and
/// syncs the folder.
pub(crate) fn publish(from: &Path, to: &Path) -> Result<()> {
    fs::hard_link(from, to).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            refused(
                to,
                ffi::SQLITE_CANTOPEN,
                "a file appeared at the destination during the backup; it was left alone",
            )
        } else {
            Error::io("backup: link the copy into place", to, e)
        }
    })?;
    fs::remove_file(from).map_err(|e| Error::io("backup: drop the temporary name", from, e))?;
    sync_parent_dir(to)
}

/// Syncs the file at `path` to disk.
pub(crate) fn fsync_file(path: &Path) -> Result<()> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("backup: sync the copy", path, e))
}

/// Backs up the live database at `live` to `dest`; see the module docs.
pub fn backup_file(live: &Path, dest: &Path) -> Result<BackupReport> {
    check_free_destination(dest)?;
    let partial = side_file(dest, ".partial");
    // Ours from here on: created exclusively, so removing it on failure
    // never removes a file we did not write.
    drop(create_exclusive(&partial).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            refused(
                dest,
                ffi::SQLITE_CANTOPEN,
                format!(
                    "{} exists (a leftover?); remove it first",
                    partial.display()
                ),
            )
        } else {
            Error::io("backup: create the temporary copy", &partial, e)
        }
    })?);
    let outcome = write_verified(live, &partial).and_then(|report| {
        publish(&partial, dest)?;
        Ok(BackupReport {
            path: dest.to_owned(),
            ..report
        })
    });
    if outcome.is_err() {
        let _ = fs::remove_file(&partial);
        let _ = fs::remove_file(side_file(&partial, "-journal"));
    }
    outcome
}

/// Steps 3 and 4 of the module docs, into `partial`.
fn write_verified(live: &Path, partial: &Path) -> Result<BackupReport> {
    write_verified_with(live, partial, sync_copy)
}

/// [`write_verified`], with `sync` syncing the byte copy (tests watch it).
fn write_verified_with(
    live: &Path,
    partial: &Path,
    sync: impl FnOnce(&Connection, &Path) -> Result<()>,
) -> Result<BackupReport> {
    // Read-write only so that a hot journal left by a crash is rolled back
    // first, as any reader does; the backup itself only reads it.
    let source = open_vfs(
        live,
        OpenFlags::SQLITE_OPEN_READ_WRITE,
        "backup: open the store",
    )?;
    // One read transaction for the census and the copy: both see the same
    // snapshot.
    source
        .execute_batch("BEGIN")
        .map_err(|e| sqlite_or_refused("backup: begin", live, e))?;
    let copied = copy_snapshot(&source, live, partial);
    // The snapshot's bytes are in the copy: writers may go on, while the
    // copy is synced and verified.
    let _ = source.execute_batch("COMMIT");
    drop(source);
    let (version, rows, unsynced) = copied?;
    verify_while(
        partial,
        version,
        &rows,
        verify_split(),
        || match &unsynced {
            Some(dest) => sync(dest, partial),
            None => Ok(()),
        },
    )?;
    drop(unsynced);
    let bytes = fs::metadata(partial)
        .map_err(|e| Error::io("backup: size the copy", partial, e))?
        .len();
    Ok(BackupReport {
        path: partial.to_owned(),
        bytes,
        schema_version: version,
        rows,
    })
}

/// Inside `source`'s open transaction: the census, then the copy into
/// `partial` (step 3 of the module docs). With it, the connection to the
/// copy whose bytes still need their sync ([`sync_copy`]), or `None` if the
/// copy is synced already (a WAL-mode store's).
fn copy_snapshot(
    source: &Connection,
    live: &Path,
    partial: &Path,
) -> Result<(i64, RowCounts, Option<Connection>)> {
    let err = |e| sqlite_or_refused("backup: read the store's layout", live, e);
    // The census's reads take the SHARED lock that holds the file still.
    let (version, rows) = census(source, live)?;
    let mode: String = source
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(err)?;
    let dest = open_vfs(
        partial,
        OpenFlags::SQLITE_OPEN_READ_WRITE,
        "backup: open the copy",
    )?;
    if mode.eq_ignore_ascii_case("wal") {
        copy_wal_database(source, dest, partial)?;
        return Ok((version, rows, None));
    }
    let page_size: i64 = source
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(err)?;
    let page_count: i64 = source
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(err)?;
    let bytes = u64::try_from(page_size.saturating_mul(page_count)).unwrap_or(0);
    let page_size = u64::try_from(page_size).unwrap_or(0);
    copy_file_bytes(source, live, &dest, partial, page_size, bytes)?;
    Ok((version, rows, Some(dest)))
}

/// The copy of a store in WAL mode: its committed pages may sit in the
/// `-wal`, so they are copied with the backup API into `dest` set to
/// TRUNCATE + FULL, whose emptied journal is then dropped (the finished
/// backup has no side file) and the file synced.
fn copy_wal_database(source: &Connection, dest: Connection, partial: &Path) -> Result<()> {
    dest.execute_batch("PRAGMA journal_mode = TRUNCATE; PRAGMA synchronous = FULL;")
        .map_err(|e| sqlite_or_refused("backup: set up the copy", partial, e))?;
    copy_pages(source, &dest, partial)?;
    drop(dest);
    let journal = side_file(partial, "-journal");
    match fs::symlink_metadata(&journal) {
        Ok(m) if m.len() == 0 => {
            let _ = fs::remove_file(&journal);
        }
        Ok(_) => {
            return Err(sqlite_err(
                "backup: the copy's journal is not empty",
                partial,
                ffi::SQLITE_IOERR,
            ))
        }
        Err(_) => {}
    }
    fsync_file(partial)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::store::Store;
    use crate::NewJob;

    #[test]
    fn a_backup_is_whole_and_never_replaces_a_file() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("chunks.db");
        let (store, _) = Store::open_file(&live)?;
        store
            .jobs()
            .enqueue_many(&vec![NewJob::new("k", "{}"); 100])?;
        let dest = dir.path().join("copy.db");
        let report = backup_file(&live, &dest)?;
        assert!(report.rows.contains(&("mem_tree_jobs".to_owned(), 100)));
        assert!(!side_file(&dest, ".partial").exists());
        assert!(!side_file(&dest, "-journal").exists());
        let again = backup_file(&live, &dest).unwrap_err();
        assert!(matches!(again, Error::PathRefused { .. }), "{again}");
        assert_eq!(
            fs::metadata(&dest).map(|m| m.len()).ok(),
            Some(report.bytes)
        );
        let (copy, _) = Store::open_file(&dest)?;
        assert_eq!(copy.jobs().counts()?[&crate::JobStatus::Ready], 100);
        Ok(())
    }

    /// The store's side: a folder planted at the store's `-journal` name
    /// once it is open (an open refuses one planted before) fails the
    /// backup's first read of the store, by name and permanent
    /// (`PathRefused`, not SQLite's transient `CANTOPEN`), with the store
    /// unchanged and nothing at the destination; removed, the backup works.
    #[cfg(unix)]
    #[test]
    fn a_folder_planted_at_the_stores_journal_fails_the_backup_by_name() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        store
            .jobs()
            .enqueue_many(&vec![NewJob::new("k", "{}"); 100])?;
        let journal = side_file(store.path(), "-journal");
        let _ = fs::remove_file(&journal); // TRUNCATE keeps it, empty
        fs::create_dir(&journal).expect("plant");
        let before = fs::read(store.path()).expect("read");
        let dest = dir.path().join("copy.db");
        match backup_file(store.path(), &dest).unwrap_err() {
            Error::PathRefused { path, code, .. } => {
                assert_eq!(path, journal);
                assert_eq!(code, ffi::SQLITE_CANTOPEN_ISDIR);
            }
            other => panic!("not a refusal: {other:?}"),
        }
        assert_eq!(fs::read(store.path()).expect("read"), before);
        for suffix in ["", ".partial", ".partial-journal", "-journal"] {
            assert!(!side_file(&dest, suffix).exists(), "{suffix} left behind");
        }
        fs::remove_dir(&journal).expect("unplant");
        let report = backup_file(store.path(), &dest)?;
        assert!(report.rows.contains(&("mem_tree_jobs".to_owned(), 100)));
        Ok(())
    }

    /// The copy's side: a folder planted at `<dest>.partial-journal` once
    /// the copy exists (a backup refuses one there before it starts) is
    /// reported by name and permanent, whichever way the store is copied
    /// (a TRUNCATE store's byte copy: the verification's first read of the
    /// copy meets it; a WAL store's backup API: its write of the copy
    /// does), also when the destination is named through a linked folder
    /// (SQLite names the copy's files by their resolved path). The store is
    /// only read.
    #[cfg(unix)]
    #[test]
    fn a_folder_planted_at_the_copys_journal_fails_the_backup_by_name() -> Result<()> {
        for wal in [false, true] {
            for linked in [false, true] {
                let dir = tempfile::tempdir().expect("tempdir");
                let live = dir.path().join("live.db");
                let conn = indexed_database(&live);
                if wal {
                    let mode: String = conn
                        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                        .expect("wal");
                    assert_eq!(mode, "wal");
                }
                drop(conn);
                let real = fs::canonicalize(dir.path())
                    .expect("canonical")
                    .join("real");
                fs::create_dir(&real).expect("mkdir");
                let folder = if linked {
                    let link = dir.path().join("link");
                    std::os::unix::fs::symlink(&real, &link).expect("link");
                    link
                } else {
                    real.clone()
                };
                let partial = folder.join("copy.db.partial");
                fs::File::create(&partial).expect("create");
                fs::create_dir(side_file(&partial, "-journal")).expect("plant");
                let before = fs::read(&live).expect("read");
                let case = format!("wal {wal}, linked {linked}");
                match write_verified(&live, &partial).unwrap_err() {
                    Error::PathRefused { path, code, .. } => {
                        assert_eq!(path, real.join("copy.db.partial-journal"), "{case}");
                        assert_eq!(code, ffi::SQLITE_CANTOPEN_ISDIR, "{case}");
                    }
                    other => panic!("{case}: not a refusal: {other:?}"),
                }
                assert_eq!(fs::read(&live).expect("read"), before, "{case}");
            }
        }
        Ok(())
    }

    #[test]
    fn the_lock_byte_page_is_never_read() {
        let page = 4096;
        // Below it, and past it: whole blocks.
        assert_eq!(readable_parts(0, 65536, page), vec![(0, 65536)]);
        assert_eq!(
            readable_parts(PENDING_BYTE + 65536, 65536, page),
            vec![(0, 65536)]
        );
        // The block that starts with it: the rest of the block only.
        assert_eq!(
            readable_parts(PENDING_BYTE, 65536, page),
            vec![(4096, 65536)]
        );
        // A 64 KiB page fills the block: nothing to read.
        assert_eq!(readable_parts(PENDING_BYTE, 65536, 65536), vec![]);
        // A block that ends inside it, and one around it.
        assert_eq!(
            readable_parts(PENDING_BYTE - 1024, 2048, page),
            vec![(0, 1024)]
        );
        assert_eq!(
            readable_parts(PENDING_BYTE - 1024, 8192, page),
            vec![(0, 1024), (5120, 8192)]
        );
    }

    #[test]
    fn a_rollback_journal_store_is_copied_byte_for_byte() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("chunks.db");
        let (store, _) = Store::open_file(&live)?;
        store
            .jobs()
            .enqueue_many(&vec![NewJob::new("k", "{}"); 500])?;
        let dest = dir.path().join("copy.db");
        backup_file(&live, &dest)?;
        // No writer ran since: the copy is the live file's bytes (the
        // backup API would have written a new header change counter).
        assert_eq!(
            fs::read(&dest).expect("read"),
            fs::read(&live).expect("read")
        );
        Ok(())
    }

    /// A database whose table `t` holds 300 rows, indexed on each column.
    fn indexed_database(path: &Path) -> Connection {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch(
            "CREATE TABLE t(a INTEGER NOT NULL, b TEXT NOT NULL); \
             CREATE INDEX t_a ON t(a); CREATE INDEX t_b ON t(b); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) \
             INSERT INTO t SELECT i, printf('v%05d', 1000 - i) FROM n;",
        )
        .expect("fill");
        conn
    }

    fn pragma_lines(path: &Path, pragma: &str) -> Vec<String> {
        let conn = Connection::open(path).expect("open");
        let mut stmt = conn.prepare(pragma).expect("prepare");
        let rows = stmt.query_map([], |r| r.get(0)).expect("query");
        rows.collect::<rusqlite::Result<_>>().expect("rows")
    }

    /// The backup of `live` fails as CORRUPT, leaving nothing behind, and so
    /// does each form of the verification of `live` itself.
    fn assert_refused(live: &Path) -> Result<()> {
        let census_conn = open_vfs(live, OpenFlags::SQLITE_OPEN_READ_ONLY, "test")?;
        let (version, rows) = census(&census_conn, live)?;
        drop(census_conn);
        for split in [false, true] {
            let err = verify_while(live, version, &rows, split, || Ok(())).unwrap_err();
            assert_eq!(
                err.sqlite_code(),
                Some(ffi::SQLITE_CORRUPT),
                "split {split}: {err}"
            );
        }
        let dest = live.with_file_name("copy.db");
        let err = backup_file(live, &dest).unwrap_err();
        assert_eq!(err.sqlite_code(), Some(ffi::SQLITE_CORRUPT), "{err}");
        assert!(!dest.exists() && !side_file(&dest, ".partial").exists());
        Ok(())
    }

    #[test]
    fn an_index_out_of_step_with_its_table_fails_the_backup() -> Result<()> {
        // The two indexes swap b-trees: each is whole and holds as many
        // entries as the table, but not the table's values. quick_check
        // cannot see it; only the index cross-checks of integrity_check do,
        // which the split verification runs per table.
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("live.db");
        let conn = indexed_database(&live);
        let root = |name: &str| -> i64 {
            conn.query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .expect("rootpage")
        };
        let (a, b) = (root("t_a"), root("t_b"));
        conn.execute_batch(&format!(
            "PRAGMA writable_schema = ON; \
             UPDATE sqlite_schema SET rootpage = {b} WHERE name = 't_a'; \
             UPDATE sqlite_schema SET rootpage = {a} WHERE name = 't_b';"
        ))
        .expect("swap");
        drop(conn);
        assert_eq!(pragma_lines(&live, "PRAGMA quick_check"), ["ok"]);
        assert_ne!(pragma_lines(&live, "PRAGMA integrity_check"), ["ok"]);
        assert_refused(&live)
    }

    #[test]
    fn a_page_no_table_uses_fails_the_backup() -> Result<()> {
        // The index leaves the schema but keeps its pages: every table's own
        // check is clean; only the whole-file check (every page used once),
        // which the split verification runs as quick_check, sees them.
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("live.db");
        let conn = indexed_database(&live);
        conn.execute_batch(
            "PRAGMA writable_schema = ON; DELETE FROM sqlite_schema WHERE name = 't_b';",
        )
        .expect("orphan the index");
        drop(conn);
        assert_eq!(pragma_lines(&live, "PRAGMA integrity_check(t)"), ["ok"]);
        assert_eq!(
            pragma_lines(&live, "PRAGMA integrity_check(sqlite_schema)"),
            ["ok"]
        );
        assert_ne!(pragma_lines(&live, "PRAGMA quick_check"), ["ok"]);
        assert_refused(&live)
    }

    #[test]
    fn the_copy_is_synced_after_the_read_lock_ends_while_it_is_verified() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("live.db");
        drop(indexed_database(&live));
        let pages: i64 = Connection::open(&live)
            .and_then(|c| c.query_row("PRAGMA page_count", [], |r| r.get(0)))
            .expect("pages");
        let partial = dir.path().join("copy.db.partial");
        fs::File::create(&partial).expect("create");
        let mut synced = false;
        let report = write_verified_with(&live, &partial, |dest, path| {
            // The store's read lock is gone: a writer that does not wait
            // commits at once.
            let writer = Connection::open(&live).expect("open");
            writer.busy_timeout(Duration::ZERO).expect("timeout");
            writer
                .execute("INSERT INTO t VALUES (0, 'after')", [])
                .expect("a writer commits while the copy is synced");
            // The verification reads the copy meanwhile (at least its
            // pages once): it does not wait for the sync.
            let start = std::time::Instant::now();
            while crate::vfs::method_calls(path, crate::vfs::VfsMethod::Read) < pages as u64 {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "the copy is not verified while it is synced"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            synced = true;
            sync_copy(dest, path)
        })?;
        assert!(synced);
        assert_eq!(
            report.rows,
            vec![("t".to_owned(), 300)],
            "the snapshot's rows"
        );
        let rows: i64 = Connection::open(&live)
            .and_then(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
            .expect("count");
        assert_eq!(rows, 301);
        Ok(())
    }

    #[test]
    fn a_store_in_wal_mode_is_copied_with_its_wal_frames() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("wal.db");
        let writer = Connection::open(&live).expect("open");
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .expect("wal");
        assert_eq!(mode, "wal");
        writer
            .execute_batch(
                "PRAGMA wal_autocheckpoint = 0; CREATE TABLE t(x); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
                 INSERT INTO t SELECT i FROM n;",
            )
            .expect("write");
        // The rows are in the -wal only: a byte copy of the main file
        // would miss them.
        assert!(fs::metadata(side_file(&live, "-wal")).expect("wal").len() > 0);
        let dest = dir.path().join("copy.db");
        let report = backup_file(&live, &dest)?;
        assert_eq!(report.rows, vec![("t".to_owned(), 1000)]);
        assert!(!side_file(&dest, "-journal").exists());
        let copy = Connection::open(&dest).expect("open copy");
        let n: i64 = copy
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 1000);
        drop(writer);
        Ok(())
    }
}
