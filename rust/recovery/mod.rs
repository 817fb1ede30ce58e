//! Leaving WAL, recovering side files after an I/O error at open, refusing
//! files that are not ours, and quarantining a corrupt database — without
//! ever losing a committed row.
//!
//! # The protocol
//!
//! 1. **Decide from a read.** Whether a file is refused (schema too new, not
//!    a memtree database) is decided by reads on a *guarded* connection,
//!    before anything writes. A guarded connection has
//!    `SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE` and `SQLITE_FCNTL_PERSIST_WAL` set,
//!    so closing it can neither checkpoint nor delete a `-wal` behind our
//!    back; a refused file is left byte for byte as it was.
//! 2. **Own the file.** A WAL-era database (header in WAL mode, or a `-wal`
//!    beside it) is handled by a guarded connection in
//!    `locking_mode=EXCLUSIVE`, set before its first read: the WAL index then
//!    lives in heap memory, so no `-shm` is created, mapped or needed — an
//!    unwritable or unmappable `-shm` cannot block it. If another process
//!    holds the file (it is live there), nothing is touched.
//! 3. **Frames reach a synced database before the `-wal` changes.**
//!    `wal_checkpoint(TRUNCATE)` copies every frame into the database, syncs
//!    it, and only then truncates the `-wal`. Then the switch to the TRUNCATE
//!    journal rewrites the header through a synced rollback journal. After
//!    both succeed the `-wal` is empty; only an *empty* `-wal` is removed, and
//!    `-shm` only while the exclusive lock is held.
//! 4. **A failure leaves the pair.** If any step fails, the connection is
//!    closed (guarded: no checkpoint, no delete) and the database with its
//!    `-wal` is left exactly where SQLite left it. A checkpoint interrupted
//!    half-way is consistent while the `-wal` stays beside the database
//!    (SQLite relies on this after every crash), so nothing is copied,
//!    restored or moved aside: the files are as they were or strictly
//!    further along, and the next open simply tries again.
//! 5. **A `-journal` is never touched**: a hot journal is what rolls an
//!    interrupted commit back, and the next reader does so.
//! 6. **Nothing is moved.** A database that may be open elsewhere is never
//!    renamed or replaced at its path: quarantine copies it aside and
//!    rebuilds it in place (see [`crate::recovery::quarantine`]).
//!
//! Side files written by earlier releases (a `-wal` moved aside as
//! `<db>-wal.unrecovered-<ms>`) are reported, and merged on request, by
//! [`crate::recovery::salvage`].

pub mod copy_faults;
pub mod events;
pub(crate) mod main_file;
pub mod quarantine;
pub mod salvage;

use std::ffi::{c_int, c_void, CStr};
use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{ffi, Connection, OpenFlags};

use crate::error::classify::ErrorClass;
use crate::error::{Error, Result};
use crate::schema;
pub use crate::sys::files::side_file;
use crate::sys::files::{remove_if_empty_file, sync_parent_dir};

/// How long an owning connection waits for another connection's lock
/// before concluding the file is live elsewhere (capped: [`within_busy_budget`]).
const OWNER_BUSY_TIMEOUT: Duration = Duration::from_millis(1000);

/// `wait`, or the process's busy budget ([`crate::db::busy::timeout`]) when
/// that is shorter. Recovery's own waits are fixed constants, no longer than
/// the default budget, so production waits them in full; a test that lowers
/// the budget (`memtree.testing.busy_timeout`) to prove a held lock ends in
/// an error would otherwise still wait them out on every recovery attempt.
pub(crate) fn within_busy_budget(wait: Duration) -> Duration {
    wait.min(crate::db::busy::timeout())
}

/// What [`recover_side_files`] (or the WAL migration) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// WAL frames were checkpointed into the database and the file left WAL.
    pub checkpointed_wal: bool,
    /// Another connection holds the file; nothing was touched.
    pub held_elsewhere: bool,
    /// A stale `-shm` was removed under the exclusive lock.
    pub removed_shm: bool,
}

/// True when `db` must leave WAL before memtree's connection opens it: its
/// header says WAL (bytes 18–19 are 2), or a `-wal` lies beside it (SQLite
/// then opens it in WAL mode whatever the header says).
pub fn is_wal_era(db: &Path) -> bool {
    if fs::symlink_metadata(side_file(db, "-wal")).is_ok() {
        return true;
    }
    let mut header = [0u8; 20];
    fs::File::open(db)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| header[18] == 2 || header[19] == 2)
}

/// Sets or clears `SQLITE_FCNTL_PERSIST_WAL` on `conn`'s main database file:
/// while set, closing the last connection or leaving WAL keeps the `-wal`.
fn persist_wal(conn: &Connection, on: bool, path: &Path) -> Result<()> {
    let mut flag: c_int = c_int::from(on);
    const MAIN: &CStr = c"main";
    // SAFETY: the handle is valid for the life of `conn`, "main" is a
    // NUL-terminated schema name, and PERSIST_WAL reads/writes one int.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            MAIN.as_ptr(),
            ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut flag as *mut c_int).cast::<c_void>(),
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(crate::vfs::sqlite_or_refused(
            "set the -wal to persist",
            path,
            rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None),
        ))
    }
}

/// Guards (or unguards) `conn`: while guarded, closing it can neither
/// checkpoint nor delete the `-wal`.
pub fn guard(conn: &Connection, on: bool, path: &Path) -> Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, on)
        .map_err(|e| crate::vfs::sqlite_or_refused("set no-checkpoint-on-close", path, e))?;
    persist_wal(conn, on, path)
}

/// Refuses, from reads alone, a file memtree must not change: a schema newer
/// than this build, or a database that is not memtree's (tables, but no
/// `mem_tree_chunks`). An empty database is ours to initialise.
pub fn refuse_unless_ours(conn: &Connection, path: &Path) -> Result<()> {
    let err = |ctx: &'static str| move |e| crate::vfs::sqlite_or_refused(ctx, path, e);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err("read the schema version"))?;
    let (tables, has_chunks): (i64, bool) = conn
        .query_row(
            "SELECT count(*), coalesce(sum(name = 'mem_tree_chunks'), 0) > 0 FROM sqlite_master
             WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(err("read the schema"))?;
    if tables > 0 && !has_chunks {
        return Err(Error::NotMemtree {
            path: path.to_owned(),
            reason: format!("{tables} table(s) but no mem_tree_chunks (user_version {version})"),
        });
    }
    if version > schema::CURRENT_VERSION {
        return Err(Error::SchemaTooNew {
            path: path.to_owned(),
            found: version,
            supported: schema::CURRENT_VERSION,
        });
    }
    Ok(())
}

/// Opens a guarded connection owning `db` in EXCLUSIVE locking mode, after
/// the refusal checks; `None` when another connection holds the file.
fn owning_connection(db: &Path) -> Result<Option<Connection>> {
    let err = |ctx: &'static str| move |e| crate::vfs::sqlite_or_refused(ctx, db, e);
    crate::vfs::register().map_err(|code| {
        crate::vfs::sqlite_or_refused(
            "register the memtree VFS",
            db,
            rusqlite::Error::SqliteFailure(ffi::Error::new(code), None),
        )
    })?;
    // No CREATE: recovery never brings a database into existence.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags_and_vfs(db, flags, crate::vfs::VFS_NAME)
        .map_err(err("recovery: open"))?;
    crate::schema::distrust_schema(&conn, db)?;
    guard(&conn, true, db)?;
    conn.busy_timeout(within_busy_budget(OWNER_BUSY_TIMEOUT))
        .map_err(err("recovery: busy timeout"))?;
    // Before the first read: the WAL index then lives in heap memory. The
    // first read below needs the file's EXCLUSIVE lock for that.
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE;")
        .map_err(err("recovery: exclusive locking"))?;
    let owned = refuse_unless_ours(&conn, db).and_then(|()| {
        // A write transaction takes the EXCLUSIVE lock, kept until close in
        // this locking mode; it writes nothing.
        conn.execute_batch("PRAGMA synchronous = FULL; BEGIN EXCLUSIVE; COMMIT;")
            .map_err(err("recovery: take the exclusive lock"))
    });
    match owned {
        Ok(()) => Ok(Some(conn)),
        // Another connection holds the file: it is live there.
        Err(e) if e.class() == ErrorClass::Busy => Ok(None),
        Err(e) => Err(e),
    }
}

/// Moves a WAL-era database to the TRUNCATE journal (protocol steps 2–4),
/// or, for a database already on a rollback journal, removes a stale `-shm`
/// under the exclusive lock. Used by the first open of a WAL-era file and by
/// the recovery after an I/O error at open.
pub fn recover_side_files(db: &Path) -> Result<RecoveryReport> {
    let mut report = RecoveryReport::default();
    let wal = side_file(db, "-wal");
    let shm = side_file(db, "-shm");
    if !is_wal_era(db) && fs::symlink_metadata(&shm).is_err() {
        return Ok(report);
    }
    let wal_existed = fs::symlink_metadata(&wal).is_ok();
    let owner = owning_connection(db);
    if owner.is_err() && !wal_existed {
        // Reading a WAL-mode header opened (created) an empty -wal that the
        // guard kept; a refused or failed file is left as it was found.
        let _ = remove_if_empty_file(&wal);
    }
    let Some(conn) = owner? else {
        // Someone else holds the file: their -wal/-shm are live; leave them.
        report.held_elsewhere = true;
        return Ok(report);
    };
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(|e| crate::vfs::sqlite_or_refused("recovery: read the journal mode", db, e))?;
    if mode.eq_ignore_ascii_case("wal") {
        let busy: i64 = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .map_err(|e| crate::vfs::sqlite_or_refused("recovery: checkpoint the WAL", db, e))?;
        if busy != 0 {
            // Cannot happen while we hold the exclusive lock; if it does,
            // the -wal stays and nothing is claimed.
            report.held_elsewhere = true;
            return Ok(report);
        }
        let now: String = conn
            .query_row("PRAGMA journal_mode = TRUNCATE", [], |r| r.get(0))
            .map_err(|e| crate::vfs::sqlite_or_refused("recovery: leave WAL", db, e))?;
        if !now.eq_ignore_ascii_case("truncate") {
            return Err(crate::vfs::sqlite_or_refused(
                "recovery: SQLite kept WAL",
                db,
                rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_BUSY), Some(now)),
            ));
        }
        report.checkpointed_wal = true;
    }
    // The -wal persisted (guarded) but is empty now: every frame is in the
    // synced database. A non-empty one is left for SQLite to replay.
    remove_if_empty_file(&wal)?;
    if !wal.exists() && fs::symlink_metadata(&shm).is_ok_and(|m| m.is_file()) {
        // Safe: we hold the EXCLUSIVE lock, so no connection maps this index.
        // A -shm we may not remove (another owner's) is harmless on a
        // rollback journal, which never opens it.
        report.removed_shm = fs::remove_file(&shm).is_ok();
    }
    drop(conn);
    sync_parent_dir(db)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{self, Fault, FileRole, VfsMethod};
    use std::path::PathBuf;

    #[test]
    fn recovery_waits_its_constants_under_the_default_budget_and_never_past_it() {
        use crate::db::busy::{timeout, BUSY_TIMEOUT};
        // No test of this crate sets the budget (they share one process):
        // the default is in force, and production waits the constants.
        assert_eq!(timeout(), BUSY_TIMEOUT);
        assert_eq!(
            within_busy_budget(OWNER_BUSY_TIMEOUT),
            Duration::from_secs(1)
        );
        assert_eq!(
            within_busy_budget(quarantine::REBUILD_BUSY_TIMEOUT),
            Duration::from_secs(5)
        );
        // A wait longer than the budget is cut to it (a lowered budget
        // cuts the constants so: tests/durability/test_recovery_budget.py).
        assert_eq!(
            within_busy_budget(BUSY_TIMEOUT + Duration::from_millis(1)),
            BUSY_TIMEOUT
        );
    }

    /// A database whose last rows exist only as frames in its `-wal`: the
    /// files are copied while the writer is still open, as after a crash.
    fn wal_database_with_frames(dir: &Path) -> rusqlite::Result<PathBuf> {
        let origin = dir.join("origin.db");
        let writer = Connection::open(&origin)?;
        writer.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE mem_tree_chunks (x INTEGER);
             INSERT INTO mem_tree_chunks VALUES (1), (2), (3);",
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
        conn.query_row("SELECT count(*) FROM mem_tree_chunks", [], |r| r.get(0))
    }

    #[test]
    fn checkpoint_keeps_every_wal_row() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = wal_database_with_frames(dir.path())?;
        assert!(is_wal_era(&db));
        vfs::register().map_err(|c| format!("register: {c}"))?;
        let report = recover_side_files(&db)?;
        assert!(report.checkpointed_wal && !report.held_elsewhere);
        assert!(!side_file(&db, "-wal").exists());
        assert!(!is_wal_era(&db));
        assert_eq!(rows(&db)?, 3);
        let names: Vec<String> = fs::read_dir(dir.path())?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| !n.contains(".pre-recovery") && !n.contains(".unrecovered")),
            "recovery creates no copies: {names:?}"
        );
        Ok(())
    }

    #[test]
    fn failed_checkpoint_leaves_the_pair_and_loses_nothing(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = wal_database_with_frames(dir.path())?;
        let wal_bytes = fs::read(side_file(&db, "-wal"))?;
        vfs::register().map_err(|c| format!("register: {c}"))?;
        // Copying frames into the database fails part-way.
        vfs::inject_fault(
            &db,
            Fault {
                method: VfsMethod::Write,
                nth: 1,
                code: ffi::SQLITE_IOERR_WRITE,
                persistent: true,
                role: Some(FileRole::MainDb),
            },
        );
        let outcome = recover_side_files(&db);
        let fired = vfs::clear_fault(&db);
        assert!(fired >= 1, "the fault fired");
        assert!(outcome.is_err(), "the failure is reported: {outcome:?}");
        assert_eq!(
            fs::read(side_file(&db, "-wal"))?,
            wal_bytes,
            "the -wal is untouched: closing the guarded connection neither \
             checkpointed nor deleted it"
        );
        // The next attempt, without the fault, brings every row in.
        let report = recover_side_files(&db)?;
        assert!(report.checkpointed_wal);
        assert_eq!(rows(&db)?, 3);
        Ok(())
    }

    #[test]
    fn a_foreign_database_is_refused_unchanged(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("users.db");
        {
            let c = Connection::open(&db)?;
            c.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY);")?;
        }
        let before = fs::read(&db)?;
        vfs::register().map_err(|c| format!("register: {c}"))?;
        let conn = Connection::open(&db)?;
        let refused = refuse_unless_ours(&conn, &db);
        assert!(
            matches!(refused, Err(Error::NotMemtree { .. })),
            "{refused:?}"
        );
        drop(conn);
        assert_eq!(fs::read(&db)?, before);
        Ok(())
    }
}
