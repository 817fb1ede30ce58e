//! Recovery that never loses committed data: side-file recovery after an I/O
//! error at open, and quarantine of a corrupt database.
//!
//! The reference deleted `chunks.db-wal` on any I/O open error; for a database
//! still in WAL mode that discards committed, un-checkpointed transactions.
//! Here a `-wal` holding frames is checkpointed first — through a connection
//! in EXCLUSIVE locking mode, which keeps the WAL index in heap memory and so
//! never touches the `-shm` that may be what failed — and only if that
//! checkpoint fails on I/O is the `-wal` moved aside (kept, never unlinked).
//! `-shm` is removed only while this process holds the exclusive lock, i.e.
//! when no connection anywhere can be using it. A `-journal` is never touched:
//! a hot journal is what SQLite needs to roll an interrupted commit back.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::classify::{classify_error, ErrorClass};
use crate::error::{Error, Result};
use crate::journal::sync_parent_dir;
use crate::store::now_ms;

/// What [`recover_side_files`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// WAL frames were checkpointed into the database and the `-wal` removed.
    pub checkpointed_wal: bool,
    /// Where an unreadable `-wal` was moved (kept for manual recovery).
    pub wal_moved_to: Option<PathBuf>,
    /// A stale `-shm` was removed under the exclusive lock.
    pub removed_shm: bool,
}

/// `<db><suffix>`, e.g. `chunks.db-wal`.
pub fn side_file(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A path beside `original` that does not exist yet: `<original><tag>-<ms>`.
fn aside_path(original: &Path, tag: &str) -> PathBuf {
    let stamp = now_ms();
    (0..)
        .map(|n| {
            let suffix = if n == 0 {
                format!("{tag}-{stamp}")
            } else {
                format!("{tag}-{stamp}.{n}")
            };
            side_file(original, &suffix)
        })
        .find(|p| !p.exists())
        .expect("an unused name exists")
}

/// Opens a recovery connection holding the database's EXCLUSIVE lock, or
/// `None` when another connection holds the file (then nothing is touched).
fn exclusive_connection(db: &Path) -> Result<Option<Connection>> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags_and_vfs(db, flags, crate::vfs::VFS_NAME)
        .map_err(|e| Error::sqlite("recovery: open", db, e))?;
    conn.busy_timeout(Duration::from_secs(1))
        .map_err(|e| Error::sqlite("recovery: busy timeout", db, e))?;
    // Set before the first read: the WAL index then lives in heap memory.
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE;")
        .map_err(|e| Error::sqlite("recovery: exclusive locking", db, e))?;
    // A write transaction takes the EXCLUSIVE lock, kept until close in this
    // locking mode.
    match conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;") {
        Ok(()) => Ok(Some(conn)),
        Err(e) if classify_error(&e) == ErrorClass::Busy => Ok(None),
        Err(e) => Err(Error::sqlite("recovery: take the exclusive lock", db, e)),
    }
}

/// Recovers the side files of `db` after an I/O error at open, without ever
/// discarding a committed transaction. Returns what was done.
pub fn recover_side_files(db: &Path) -> Result<RecoveryReport> {
    let mut report = RecoveryReport::default();
    let wal = side_file(db, "-wal");
    let shm = side_file(db, "-shm");
    let wal_has_frames = fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    if !wal_has_frames && !shm.exists() {
        return Ok(report);
    }
    let conn = match exclusive_connection(db) {
        Ok(Some(conn)) => conn,
        // Someone else holds the file: their -wal/-shm are live; leave them.
        Ok(None) => return Ok(report),
        // The database itself cannot be opened or locked: nothing can be
        // checkpointed, so nothing is moved either; the caller's retry fails
        // and the circuit breaker counts it.
        Err(e) => return Err(e),
    };
    if wal_has_frames {
        let checkpoint = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
            .and_then(|busy| {
                let mode: String =
                    conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
                Ok(busy == 0 && mode.eq_ignore_ascii_case("delete"))
            });
        match checkpoint {
            Ok(true) => report.checkpointed_wal = true,
            Ok(false) => return Ok(report),
            Err(e) if is_io_failure(&e) => {
                drop(conn);
                report.wal_moved_to = Some(move_aside(&wal, db)?);
                return Ok(report);
            }
            Err(e) => return Err(Error::sqlite("recovery: checkpoint the WAL", db, e)),
        }
    }
    if shm.exists() && !wal.exists() {
        // Safe: we hold the EXCLUSIVE lock, so no connection maps this index.
        fs::remove_file(&shm).map_err(|e| Error::io("recovery: remove stale -shm", &shm, e))?;
        report.removed_shm = true;
    }
    drop(conn);
    sync_parent_dir(db)?;
    Ok(report)
}

/// A checkpoint failure worth moving the `-wal` aside for: anything but
/// another connection's lock (which means the WAL is in use, not broken).
fn is_io_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    classify_error(e) != ErrorClass::Busy
}

fn move_aside(wal: &Path, db: &Path) -> Result<PathBuf> {
    let dest = aside_path(wal, ".unrecovered");
    fs::rename(wal, &dest).map_err(|e| Error::io("recovery: move the -wal aside", wal, e))?;
    sync_parent_dir(db)?;
    Ok(dest)
}

/// Renames a corrupt database and its side files to
/// `<name>.corrupt-<ms>` (side files keep their suffix after it, so SQLite
/// can still open the quarantined copy as a whole). Returns the new name.
/// The caller holds the init lock and has closed every connection to it.
pub fn quarantine(db: &Path) -> Result<PathBuf> {
    let dest = aside_path(db, ".corrupt");
    for suffix in ["-journal", "-wal", "-shm"] {
        let side = side_file(db, suffix);
        if side.exists() {
            let to = side_file(&dest, suffix);
            fs::rename(&side, &to).map_err(|e| Error::io("quarantine a side file", &side, e))?;
        }
    }
    fs::rename(db, &dest).map_err(|e| Error::io("quarantine the database", db, e))?;
    sync_parent_dir(db)?;
    Ok(dest)
}
