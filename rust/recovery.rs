//! Recovery that never loses committed data: side-file recovery after an I/O
//! error at open, and quarantine of a corrupt database.
//!
//! The reference deleted `chunks.db-wal` on any I/O open error; for a database
//! still in WAL mode that discards committed, un-checkpointed transactions.
//! Here a `-wal` holding frames is checkpointed first — through a connection
//! in EXCLUSIVE locking mode, which keeps the WAL index in heap memory and so
//! never touches the `-shm` that may be what failed — and only if that
//! checkpoint fails on I/O is the `-wal` moved aside (kept, never unlinked),
//! after the database is put back exactly as it was before the checkpoint
//! (a copy is taken first: a half-done checkpoint is only consistent while
//! its WAL stays beside it).
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
pub use crate::vfs::side_file;

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
        // A checkpoint that fails half-way leaves the database with some of
        // the WAL's pages and not others; that is only consistent while the
        // WAL stays beside it. So the pre-checkpoint file is copied first and
        // put back before the WAL is moved aside.
        let backup = aside_path(db, ".pre-recovery");
        fs::copy(db, &backup).map_err(|e| Error::io("recovery: copy the database", db, e))?;
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
            Ok(done) => {
                // Our own copy, superseded: the WAL is either fully in the
                // database or still beside it.
                remove_copy(&backup)?;
                if !done {
                    return Ok(report);
                }
                report.checkpointed_wal = true;
            }
            Err(e) if is_io_failure(&e) => {
                drop(conn);
                fs::rename(&backup, db)
                    .map_err(|e| Error::io("recovery: restore the database", db, e))?;
                report.wal_moved_to = Some(move_aside(&wal, db)?);
                return Ok(report);
            }
            Err(e) => {
                remove_copy(&backup)?;
                return Err(Error::sqlite("recovery: checkpoint the WAL", db, e));
            }
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

fn remove_copy(copy: &Path) -> Result<()> {
    fs::remove_file(copy).map_err(|e| Error::io("recovery: remove the pre-recovery copy", copy, e))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{self, Fault, FileRole, VfsMethod};

    /// A database whose last rows exist only as frames in its `-wal`: the
    /// files are copied while the writer is still open, as after a crash.
    fn wal_database_with_frames(dir: &Path) -> rusqlite::Result<PathBuf> {
        let origin = dir.join("origin.db");
        let writer = Connection::open(&origin)?;
        writer.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE t (x INTEGER);
             INSERT INTO t VALUES (1), (2), (3);",
        )?;
        let copy = fs::canonicalize(dir)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?
            .join("copy.db");
        for suffix in ["", "-wal"] {
            fs::copy(side_file(&origin, suffix), side_file(&copy, suffix))
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
        }
        drop(writer);
        Ok(copy)
    }

    fn rows(db: &Path) -> rusqlite::Result<i64> {
        let conn = Connection::open(db)?;
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
    }

    #[test]
    fn checkpoint_keeps_every_wal_row() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = wal_database_with_frames(dir.path())?;
        vfs::register().map_err(|c| format!("register: {c}"))?;
        let report = recover_side_files(&db)?;
        assert!(report.checkpointed_wal && report.wal_moved_to.is_none());
        assert!(!side_file(&db, "-wal").exists());
        assert_eq!(rows(&db)?, 3);
        let names: Vec<String> = fs::read_dir(dir.path())?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.contains("pre-recovery")),
            "the pre-recovery copy is removed once superseded: {names:?}"
        );
        Ok(())
    }

    #[test]
    fn failed_checkpoint_moves_the_wal_aside_byte_for_byte(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = wal_database_with_frames(dir.path())?;
        let wal_bytes = fs::read(side_file(&db, "-wal"))?;
        let db_bytes = fs::read(&db)?;
        vfs::register().map_err(|c| format!("register: {c}"))?;
        // Copying frames into the database fails: the lock was taken and the
        // WAL read, so this is the checkpoint itself failing on I/O.
        vfs::inject_fault(
            &db,
            Fault {
                method: VfsMethod::Write,
                nth: 1,
                code: rusqlite::ffi::SQLITE_IOERR_WRITE,
                persistent: true,
                role: Some(FileRole::MainDb),
            },
        );
        let report = recover_side_files(&db);
        let fired = vfs::clear_fault(&db);
        let report = report?;
        assert!(fired >= 1, "the fault fired");
        let moved = report.wal_moved_to.ok_or("the -wal was moved aside")?;
        assert_eq!(fs::read(&moved)?, wal_bytes, "kept byte for byte");
        assert_eq!(
            fs::read(&db)?,
            db_bytes,
            "the database is as before the checkpoint"
        );
        assert!(!side_file(&db, "-wal").exists());
        let leftovers: Vec<_> = fs::read_dir(dir.path())?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("pre-recovery"))
            .collect();
        assert!(leftovers.is_empty(), "the copy was consumed by the restore");
        Ok(())
    }
}
