//! Quarantining a corrupt database without ever renaming or replacing it.
//!
//! SQLite pairs a database with its rollback journal by name, and another
//! connection (in any process) may hold the file open between transactions
//! with no lock to show it. Renaming the damaged file away and creating a
//! fresh one at its path would leave such a connection on the moved inode,
//! where it takes the fresh file's `-journal` for its own hot journal and
//! rolls it back into the moved file ("How To Corrupt An SQLite Database
//! File", §2.4). So the file keeps its inode:
//!
//! 1. A connection to the damaged file starts SQLite's online backup *into*
//!    it from a freshly built, empty database of the current schema. The
//!    first backup step takes the file's write lock (RESERVED, then
//!    EXCLUSIVE) and journals; nothing is written to the database file yet.
//! 2. Under that lock, the damaged file is copied, byte for byte, through
//!    the same connection's file handle (so it is the very inode being
//!    rebuilt) to a fresh name `<db>.corrupt-<ms>` (created exclusively,
//!    with no side file beside it; another suffix is tried when the name is
//!    taken), fsynced, and the folder is synced.
//! 3. The backup finishes: the fresh database replaces the contents in one
//!    transaction, through the file's own journal. Every other connection
//!    sees the old contents or the new ones (the schema cookie changes, so
//!    they re-read the schema).
//!
//! Between steps 2 and 3 the rows still readable in the copy are salvaged
//! into the fresh image, so the rebuilt file holds them from the moment it
//! replaces the damaged one: the live file is never without them.
//!
//! If any step fails, the backup is abandoned (SQLite rolls its transaction
//! back). The copy is removed while the live file certainly still holds
//! everything (the failure came before the rebuild's commit began) and kept
//! otherwise.
//!
//! A file whose first page SQLite cannot read as a header (NOTADB) cannot
//! be used by any
//! connection (every reader and writer gets NOTADB), so no backup can lock
//! it: it is copied aside under a manual EXCLUSIVE lock taken through
//! SQLite's own VFS locking, then truncated to zero bytes in place (an
//! empty file is an empty database), still on the same inode.

use std::ffi::c_int;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{ffi, Connection, OpenFlags};

use crate::error::{Error, Result};
use crate::recovery::copy_faults::{self, CopyOp};
use crate::recovery::main_file::{self, main_file, start_backup};
use crate::recovery::salvage::{salvage_rows, SalvageReport};
use crate::recovery::within_busy_budget;
use crate::sys::files::{aside_path, create_exclusive};

/// How long the rebuild waits for other connections' locks (each wait capped
/// by the process's busy budget: [`crate::recovery::within_busy_budget`]).
pub(crate) const REBUILD_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How many fresh names are tried for the copy aside before giving up.
const NAME_ATTEMPTS: u32 = 64;

fn sqlite_err(context: &str, path: &Path, rc: c_int, msg: Option<String>) -> Error {
    crate::vfs::sqlite_or_refused(
        context,
        path,
        rusqlite::Error::SqliteFailure(ffi::Error::new(rc), msg),
    )
}

/// Copies the damaged database at `db` aside and rebuilds it in place as
/// an empty database of the current schema (see the module docs). Returns
/// the copy's path. The caller holds the init lock; connections of this
/// process to `db` may stay open (they see the rebuilt file).
pub fn quarantine_in_place(db: &Path) -> Result<Quarantined> {
    let conn = open_for_rebuild(db)?;
    let fresh = fresh_database(db)?;
    match rebuild_by_backup(&conn, &fresh, db) {
        // SQLite cannot read the first page as a database header (no magic,
        // or fields out of range): nobody can be using the file. A header
        // whose write-version byte is past 2 (damage after the magic) makes
        // SQLite open the file read-only (plain READONLY, not one of its
        // extended codes): no backup can write it either, so it takes the
        // same path, whose EXCLUSIVE lock keeps out any reader mid-read.
        Err(e)
            if matches!(
                e.sqlite_code(),
                Some(ffi::SQLITE_NOTADB) | Some(ffi::SQLITE_READONLY)
            ) =>
        {
            let aside = rebuild_headerless(&conn, db)?;
            Ok(Quarantined {
                aside,
                salvaged: None,
            })
        }
        other => other,
    }
}

/// What [`quarantine_in_place`] did.
#[derive(Debug, Clone)]
pub struct Quarantined {
    /// The byte-exact copy of the damaged file, kept.
    pub aside: PathBuf,
    /// The rows salvaged from it into the rebuilt file, in the rebuild's
    /// own transaction (`None` for a headerless file: nothing is readable).
    pub salvaged: Option<SalvageReport>,
}

/// A connection to the existing file `db` through the memtree VFS (never
/// creating it), waiting for other connections' locks.
fn open_for_rebuild(db: &Path) -> Result<Connection> {
    crate::vfs::register()
        .map_err(|code| sqlite_err("register the memtree VFS", db, code, None))?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags_and_vfs(db, flags, crate::vfs::VFS_NAME)
        .map_err(|e| crate::vfs::sqlite_or_refused("quarantine: open", db, e))?;
    conn.busy_timeout(within_busy_budget(REBUILD_BUSY_TIMEOUT))
        .map_err(|e| crate::vfs::sqlite_or_refused("quarantine: busy timeout", db, e))?;
    crate::schema::distrust_schema(&conn, db)?;
    // A journal that survives a crash of the rebuild rolls it back. (The
    // pragma reads the header: a headerless file refuses it, and its
    // rebuild syncs by hand.)
    let _ = conn.execute_batch("PRAGMA synchronous = FULL;");
    Ok(conn)
}

/// An in-memory database with the current schema: what the rebuilt file
/// will hold. It has more than one page, so the backup's first step leaves
/// the destination locked but not yet committed.
fn fresh_database(db: &Path) -> Result<Connection> {
    let mut fresh = Connection::open_in_memory()
        .map_err(|e| crate::vfs::sqlite_or_refused("quarantine: fresh", db, e))?;
    crate::schema::migrate_schema(&mut fresh, db)?;
    Ok(fresh)
}

/// Steps 1–3 of the module docs.
fn rebuild_by_backup(dest: &Connection, fresh: &Connection, db: &Path) -> Result<Quarantined> {
    // The first step takes the write lock (see `start_backup`); the backup
    // is finished on every path below.
    let (backup, first) = start_backup(dest, fresh, within_busy_budget(REBUILD_BUSY_TIMEOUT))
        .map_err(|rc| sqlite_err("quarantine: start the rebuild", db, rc, None))?;
    let outcome = if first == ffi::SQLITE_OK {
        copy_aside(dest, db).and_then(|aside| {
            // The rows still readable in the copy join the image before it
            // is written: the rebuilt file holds them from its first commit
            // (a change of the source through its own connection restarts
            // or updates the backup; either way the image is whole).
            let salvaged = match salvage_rows(fresh, db, &aside) {
                Ok(report) => report,
                Err(e) => {
                    let _ = std::fs::remove_file(&aside);
                    return Err(e);
                }
            };
            // SAFETY: `backup` is live until finished below.
            let rc = unsafe { ffi::sqlite3_backup_step(backup, -1) };
            if rc == ffi::SQLITE_DONE {
                Ok(Quarantined {
                    aside,
                    salvaged: Some(salvaged),
                })
            } else {
                // The copy stays: a commit that failed part-way is rolled
                // back from the journal by the next reader, but until then
                // the copy is the one certain image of the file.
                Err(sqlite_err("quarantine: rebuild in place", db, rc, None))
            }
        })
    } else {
        // DONE after one page would mean the file was rebuilt before it
        // was copied: `fresh_database` has many pages, so it cannot happen.
        Err(sqlite_err(
            "quarantine: lock the damaged file",
            db,
            first,
            None,
        ))
    };
    // SAFETY: finishes (and, after a failure, rolls back) the backup once.
    let finished = unsafe { ffi::sqlite3_backup_finish(backup) };
    match outcome {
        Ok(aside) if finished == ffi::SQLITE_OK => Ok(aside),
        Ok(_) => Err(sqlite_err(
            "quarantine: finish the rebuild",
            db,
            finished,
            None,
        )),
        Err(e) => Err(e),
    }
}

/// A fresh name beside `db` with no file at it nor at its side-file names,
/// created exclusively (never through a link); another suffix is tried
/// while names are taken.
fn create_aside(db: &Path) -> Result<(PathBuf, File)> {
    let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
    for _ in 0..NAME_ATTEMPTS {
        let candidate = aside_path(db, ".corrupt");
        let created =
            copy_faults::check(db, CopyOp::Create).and_then(|()| create_exclusive(&candidate));
        match created {
            Ok(file) => return Ok((candidate, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(Error::io("quarantine: create the copy", &candidate, e)),
        }
    }
    Err(Error::io(
        "quarantine: find a fresh name for the copy",
        db,
        last,
    ))
}

/// Copies the damaged file aside ([`main_file::copy_aside`]) to a fresh
/// `<db>.corrupt-<ms>`.
fn copy_aside(conn: &Connection, db: &Path) -> Result<PathBuf> {
    main_file::copy_aside(conn, db, "quarantine", || create_aside(db))
}

/// Calls the lock (`lock` true) or unlock method of `file` at `level`.
fn set_lock(file: *mut ffi::sqlite3_file, lock: bool, level: c_int) -> c_int {
    // SAFETY: as in `main_file::read_at` (`file` is open).
    unsafe {
        let methods = &*(*file).pMethods;
        match if lock { methods.xLock } else { methods.xUnlock } {
            Some(f) => f(file, level),
            None => ffi::SQLITE_IOERR_LOCK,
        }
    }
}

/// The headerless case of the module docs: under an EXCLUSIVE lock taken
/// through SQLite's own locking (so other connections wait or see BUSY),
/// the file is copied aside, then truncated to zero bytes in place and
/// synced. `conn` has no transaction open (its backup failed at the
/// header), so the lock levels it holds are the ones set here.
fn rebuild_headerless(conn: &Connection, db: &Path) -> Result<PathBuf> {
    let file = main_file(conn, db, "quarantine: find the file")?;
    // A hot journal beside a headerless file would have been rolled back by
    // the backup's read; one that is still there is not ours to ignore.
    let journal = crate::sys::files::side_file(db, "-journal");
    if std::fs::symlink_metadata(&journal).is_ok_and(|m| m.len() > 0) {
        return Err(sqlite_err(
            "quarantine: a journal lies beside the headerless file",
            db,
            ffi::SQLITE_BUSY,
            None,
        ));
    }
    let mut held = ffi::SQLITE_LOCK_NONE;
    let mut outcome = Ok(PathBuf::new());
    let deadline = Instant::now() + within_busy_budget(REBUILD_BUSY_TIMEOUT);
    for level in [
        ffi::SQLITE_LOCK_SHARED,
        ffi::SQLITE_LOCK_RESERVED,
        ffi::SQLITE_LOCK_EXCLUSIVE,
    ] {
        let rc = loop {
            let rc = set_lock(file, true, level);
            if rc != ffi::SQLITE_BUSY || Instant::now() >= deadline {
                break rc;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if rc != ffi::SQLITE_OK {
            outcome = Err(sqlite_err(
                "quarantine: lock the headerless file",
                db,
                rc,
                None,
            ));
            break;
        }
        held = level;
    }
    if outcome.is_ok() {
        outcome = copy_aside(conn, db).and_then(|aside| {
            // SAFETY: as in `main_file::read_at` (`file` is open); xTruncate and xSync on the open file.
            let rc = unsafe {
                let methods = &*(*file).pMethods;
                match (methods.xTruncate, methods.xSync) {
                    (Some(truncate), Some(sync)) => match truncate(file, 0) {
                        ffi::SQLITE_OK => sync(file, ffi::SQLITE_SYNC_FULL),
                        rc => rc,
                    },
                    _ => ffi::SQLITE_IOERR_TRUNCATE,
                }
            };
            if rc == ffi::SQLITE_OK {
                Ok(aside)
            } else {
                // The copy stays: the file may be partly truncated now.
                Err(sqlite_err(
                    "quarantine: empty the headerless file",
                    db,
                    rc,
                    None,
                ))
            }
        });
    }
    if held != ffi::SQLITE_LOCK_NONE {
        set_lock(file, false, ffi::SQLITE_LOCK_NONE);
    }
    outcome
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_copy_is_byte_exact_and_the_file_keeps_its_inode(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("chunks.db");
        {
            // A memtree database with one row, written as the schema has it.
            let mut live = Connection::open(&db)?;
            crate::schema::migrate_schema(&mut live, &db)?;
            live.execute_batch(
                "INSERT INTO mem_tree_ingested_sources (source_kind, source_id, \
                 ingested_at_ms) VALUES ('chat', 's', 1)",
            )?;
        }
        let before = std::fs::read(&db)?;
        let inode = std::fs::metadata(&db)?.ino();
        // Another connection stays open across the rebuild, as another
        // process's would.
        let other = Connection::open(&db)?;
        let count = |c: &Connection| -> rusqlite::Result<i64> {
            c.query_row("SELECT count(*) FROM mem_tree_ingested_sources", [], |r| {
                r.get(0)
            })
        };
        assert_eq!(count(&other)?, 1);
        let done = quarantine_in_place(&db)?;
        assert_eq!(std::fs::read(&done.aside)?, before, "byte-exact copy");
        assert_eq!(std::fs::metadata(&db)?.ino(), inode, "same inode");
        assert_eq!(done.salvaged.map(|s| s.rows), Some(1));
        assert_eq!(
            count(&other)?,
            1,
            "the open connection sees the rebuilt file"
        );
        let integrity: String = other.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!(integrity, "ok");
        Ok(())
    }

    #[test]
    fn a_folder_planted_at_the_journal_is_refused_by_name(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("chunks.db");
        {
            let mut live = Connection::open(&db)?;
            crate::schema::migrate_schema(&mut live, &db)?;
        }
        let journal = crate::sys::files::side_file(&db, "-journal");
        let _ = std::fs::remove_file(&journal);
        std::fs::create_dir(&journal)?;
        let before = std::fs::read(&db)?;
        match quarantine_in_place(&db) {
            Err(Error::PathRefused { path, code, .. }) => {
                assert_eq!(path, journal);
                assert_eq!(code, ffi::SQLITE_CANTOPEN_ISDIR);
            }
            other => panic!("not a refusal: {other:?}"),
        }
        assert_eq!(std::fs::read(&db)?, before);
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 2, "no copy aside");
        Ok(())
    }
}
