//! `restore`: puts a backup's contents into a store **in place**, on the
//! same inode, in one SQLite transaction, with the replaced contents kept.
//!
//! A database that may be open elsewhere must never be renamed or replaced
//! at its path (issue 18, DESIGN.md "A database's identity is its inode"):
//! a connection left on the old inode would take the new file's journal for
//! its own. So, as quarantine does (`crate::quarantine`):
//!
//! 1. The backup is checked first, before anything is written: a regular
//!    file (no link), `integrity_check` ok, a memtree schema no newer than
//!    this build's. Its connection keeps a read transaction open throughout,
//!    so it cannot change under the restore.
//! 2. Best effort, on Linux: a store that another process holds open (any
//!    descriptor in `/proc/<pid>/fd` on the same inode) is refused with
//!    `SQLITE_BUSY`. Only best effort: a process of another user is not
//!    visible, and POSIX locks show only transactions in progress, not an
//!    idle open connection. Connections of this process are allowed: they
//!    see the restored contents through SQLite's own locking.
//! 3. SQLite's online backup API writes the backup *into* the live file
//!    through a connection to it. Its first step takes the live file's write
//!    lock; under that lock the live file is copied byte for byte, through
//!    that connection's own file handle, to a fresh name
//!    `<store>.pre-restore-<ms>` (created exclusively), fsynced, folder
//!    synced. Then the backup finishes: one transaction through the file's
//!    own journal, so a kill at any moment leaves the old contents (the next
//!    reader rolls the hot journal back) or the new, whole.
//! 4. The live file is verified against the backup (`integrity_check`,
//!    schema version, every table's row count) and left in TRUNCATE mode.
//!
//! A missing store is created from the backup as `backup` writes one: a
//! temporary name, verified, linked into place.

use std::ffi::c_int;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{ffi, Connection, OpenFlags};

use super::backup::{backup_file, census, open_vfs, sqlite_err, verify, RowCounts};
use crate::error::{Error, Result};
use crate::recovery::copy_faults::{self, CopyOp};
use crate::recovery::main_file::{self, start_backup};
use crate::sys::files::{aside_path, create_exclusive};

/// How long the restore waits for other connections' locks.
const RESTORE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The store restored.
    pub path: PathBuf,
    /// The byte copy of the contents it replaced (None: there was no store).
    pub replaced: Option<PathBuf>,
    /// The schema version restored.
    pub schema_version: i64,
    /// Rows per table, as verified in the restored store.
    pub rows: Vec<(String, i64)>,
}

fn refused(path: &Path, code: c_int, reason: impl Into<String>) -> Error {
    Error::PathRefused {
        path: path.to_owned(),
        code,
        reason: reason.into(),
    }
}

/// A regular file, not a link; `None` when nothing is there.
fn regular_file(path: &Path, what: &str) -> Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(refused(
            path,
            ffi::SQLITE_CANTOPEN_SYMLINK,
            format!("the {what} is a symbolic link"),
        )),
        Ok(m) if m.is_file() => Ok(Some(m)),
        Ok(_) => Err(refused(
            path,
            ffi::SQLITE_CANTOPEN,
            format!("the {what} is not a regular file"),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("restore: look at the file", path, e)),
    }
}

/// Step 1: the backup, checked, with a read transaction open.
fn open_backup(backup: &Path) -> Result<(Connection, i64, RowCounts)> {
    if regular_file(backup, "backup")?.is_none() {
        return Err(refused(
            backup,
            ffi::SQLITE_CANTOPEN,
            "no backup at this path",
        ));
    }
    // `backup`'s helpers report a file planted beside the backup as the
    // refusal it is already; a file that is no database is refused here.
    let not_a_database = |e: Error| match e.sqlite_code() {
        Some(ffi::SQLITE_NOTADB) => refused(backup, ffi::SQLITE_NOTADB, "not an SQLite database"),
        _ => e,
    };
    let conn = open_vfs(
        backup,
        OpenFlags::SQLITE_OPEN_READ_ONLY,
        "restore: open the backup",
    )
    .map_err(not_a_database)?;
    // A deferred BEGIN reads nothing; the census's first read takes the
    // SHARED lock and the transaction holds it, so the census checked and
    // verified here is the snapshot restored (one open, one count of every
    // table, where a census on a throw-away connection and a second one
    // under the held snapshot read the backup twice).
    conn.execute_batch("BEGIN")
        .map_err(|e| crate::vfs::sqlite_or_refused("restore: hold the backup", backup, e))?;
    let (version, rows) = census(&conn, backup).map_err(not_a_database)?;
    if !rows.iter().any(|(t, _)| t == "mem_tree_chunks") {
        return Err(Error::NotMemtree {
            path: backup.to_owned(),
            reason: "the backup has no mem_tree_chunks table".to_owned(),
        });
    }
    if version > crate::schema::CURRENT_VERSION {
        return Err(Error::SchemaTooNew {
            path: backup.to_owned(),
            found: version,
            supported: crate::schema::CURRENT_VERSION,
        });
    }
    verify(backup, version, &rows)?;
    Ok((conn, version, rows))
}

/// Whether both paths name one existing file (same device and inode).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (fs::metadata(a), fs::metadata(b)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        fs::canonicalize(a)
            .ok()
            .is_some_and(|a| fs::canonicalize(b).ok() == Some(a))
    }
}

/// Step 2: another process holding the file open (Linux, best effort).
fn holder_elsewhere(live: &Path, meta: &fs::Metadata) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let (dev, ino) = (meta.dev(), meta.ino());
        let own = std::process::id();
        for entry in fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == own {
                continue;
            }
            let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                if fs::metadata(fd.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino) {
                    return Some(pid);
                }
            }
        }
        let _ = live;
        None
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (live, meta);
        None
    }
}

/// Restores `backup` into the store at `live`; see the module docs.
pub fn restore_file(backup: &Path, live: &Path) -> Result<RestoreReport> {
    if same_file(backup, live) {
        return Err(refused(
            live,
            ffi::SQLITE_CANTOPEN,
            "the backup and the store are the same file",
        ));
    }
    let (source, version, rows) = open_backup(backup)?;
    let Some(meta) = regular_file(live, "store")? else {
        drop(source);
        let report = backup_file(backup, live)?;
        return Ok(RestoreReport {
            path: live.to_owned(),
            replaced: None,
            schema_version: report.schema_version,
            rows: report.rows,
        });
    };
    if let Some(pid) = holder_elsewhere(live, &meta) {
        return Err(sqlite_err(
            &format!(
                "restore: process {pid} holds the store open; stop it first \
                 (restore never changes a store another process is using)"
            ),
            live,
            ffi::SQLITE_BUSY,
        ));
    }
    let dest = open_vfs(
        live,
        OpenFlags::SQLITE_OPEN_READ_WRITE,
        "restore: open the store",
    )?;
    dest.execute_batch("PRAGMA journal_mode = TRUNCATE; PRAGMA synchronous = FULL;")
        .map_err(|e| crate::vfs::sqlite_or_refused("restore: set up the store", live, e))?;
    let replaced = restore_in_place(&source, &dest, live)?;
    let _ = source.execute_batch("COMMIT");
    drop(source);
    // TRUNCATE, whatever journal mode the backup's header named.
    let mode: String = dest
        .query_row("PRAGMA journal_mode = TRUNCATE", [], |r| r.get(0))
        .map_err(|e| crate::vfs::sqlite_or_refused("restore: journal mode", live, e))?;
    drop(dest);
    if !mode.eq_ignore_ascii_case("truncate") {
        return Err(sqlite_err(
            &format!("restore: the store kept journal_mode={mode}"),
            live,
            ffi::SQLITE_BUSY,
        ));
    }
    verify(live, version, &rows)?;
    Ok(RestoreReport {
        path: live.to_owned(),
        replaced: Some(replaced),
        schema_version: version,
        rows,
    })
}

/// Step 3: the backup into the live file, with the byte copy aside taken
/// under its write lock. Returns the copy's path.
fn restore_in_place(source: &Connection, dest: &Connection, live: &Path) -> Result<PathBuf> {
    // The first step takes the live file's write lock; the backup is
    // finished below on every path.
    let (backup, first) = start_backup(dest, source, RESTORE_BUSY_TIMEOUT)
        .map_err(|rc| sqlite_err("restore: start", live, rc))?;
    let outcome = match first {
        // One page copied, the write lock held, nothing written yet.
        ffi::SQLITE_OK => copy_aside(dest, live).and_then(|aside| {
            // SAFETY: `backup` is live until finished below.
            let rc = unsafe { ffi::sqlite3_backup_step(backup, -1) };
            if rc == ffi::SQLITE_DONE {
                Ok(aside)
            } else {
                // SAFETY: as above.
                let ext = unsafe { ffi::sqlite3_extended_errcode(dest.handle()) };
                Err(sqlite_err(
                    "restore: write the backup into the store",
                    live,
                    if ext == ffi::SQLITE_OK { rc } else { ext },
                ))
            }
        }),
        // A one-page backup is done at once: the copy aside must come
        // first, so refuse (a memtree database has many pages).
        ffi::SQLITE_DONE => Err(sqlite_err(
            "restore: the backup has a single page (not a memtree database)",
            live,
            ffi::SQLITE_NOTADB,
        )),
        rc => {
            // SAFETY: as above.
            let ext = unsafe { ffi::sqlite3_extended_errcode(dest.handle()) };
            Err(sqlite_err(
                "restore: lock the store",
                live,
                if ext == ffi::SQLITE_OK { rc } else { ext },
            ))
        }
    };
    // SAFETY: finishes (after a failure: rolls back) the backup once.
    let finished = unsafe { ffi::sqlite3_backup_finish(backup) };
    match outcome {
        Ok(aside) if finished == ffi::SQLITE_OK => Ok(aside),
        Ok(_) => Err(sqlite_err("restore: finish", live, finished)),
        Err(e) => Err(e),
    }
}

/// Copies the store aside ([`main_file::copy_aside`]) to a fresh
/// `<store>.pre-restore-<ms>`, created exclusively.
fn copy_aside(conn: &Connection, db: &Path) -> Result<PathBuf> {
    main_file::copy_aside(conn, db, "restore", || {
        let aside = aside_path(db, ".pre-restore");
        copy_faults::check(db, CopyOp::Create)
            .and_then(|()| create_exclusive(&aside))
            .map(|file| (aside.clone(), file))
            .map_err(|e| Error::io("restore: create the copy of the store", &aside, e))
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::db::store::Store;
    use crate::{JobStatus, NewJob};
    use std::ffi::OsString;
    use std::os::unix::fs::MetadataExt;

    /// A store in `dir` and its backup `copy.db`, taken with 10 ready jobs;
    /// the store has 5 more since.
    fn store_with_backup(dir: &Path) -> Result<(Store, PathBuf)> {
        let (store, _) = Store::open_file(&dir.join("chunks.db"))?;
        let enqueue = |n| store.jobs().enqueue_many(&vec![NewJob::new("k", "{}"); n]);
        enqueue(10)?;
        let copy = dir.join("copy.db");
        backup_file(store.path(), &copy)?;
        enqueue(5)?;
        Ok((store, copy))
    }

    fn names(dir: &Path) -> Vec<OsString> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_restore_keeps_the_inode_and_the_replaced_bytes() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, copy) = store_with_backup(dir.path())?;
        let live = store.path().to_owned();
        let before = fs::read(&live).expect("read");
        let inode = fs::metadata(&live).expect("stat").ino();
        let report = restore_file(&copy, &live)?;
        assert_eq!(
            fs::metadata(&live).expect("stat").ino(),
            inode,
            "same inode"
        );
        let aside = report.replaced.expect("a copy aside");
        assert_eq!(fs::read(&aside).expect("read"), before, "byte-exact copy");
        // The store's own open connection sees the restored contents.
        assert_eq!(store.jobs().counts()?[&JobStatus::Ready], 10);
        Ok(())
    }

    #[test]
    fn a_folder_planted_at_the_stores_journal_is_refused_by_name() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, copy) = store_with_backup(dir.path())?;
        let journal = crate::sys::files::side_file(store.path(), "-journal");
        let _ = fs::remove_file(&journal); // TRUNCATE keeps it, empty
        fs::create_dir(&journal).expect("plant");
        let before = fs::read(store.path()).expect("read");
        let listed = names(dir.path());
        match restore_file(&copy, store.path()).unwrap_err() {
            Error::PathRefused { path, code, .. } => {
                assert_eq!(path, journal);
                assert_eq!(code, ffi::SQLITE_CANTOPEN_ISDIR);
            }
            other => panic!("not a refusal: {other:?}"),
        }
        assert_eq!(fs::read(store.path()).expect("read"), before);
        assert_eq!(names(dir.path()), listed, "no copy aside, nothing created");
        Ok(())
    }

    /// The copy aside's file I/O (create, each write, fsync, folder sync)
    /// failed at each operation in turn, once and from then on: the restore
    /// fails, the store is unchanged, no partial copy is left; with no
    /// fault left to fire it restores.
    #[test]
    fn a_failed_copy_aside_changes_nothing_and_leaves_no_copy() -> Result<()> {
        for persistent in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            let (store, copy) = store_with_backup(dir.path())?;
            let live = store.path().to_owned();
            let before = fs::read(&live).expect("read");
            let listed = names(dir.path());
            let mut fired_at = Vec::new();
            for nth in 1.. {
                copy_faults::arm(&live, nth, persistent, libc::EIO);
                let outcome = restore_file(&copy, &live);
                let (_, fired) = copy_faults::disarm(&live);
                if fired == 0 {
                    outcome?;
                    break;
                }
                fired_at.push(nth);
                let err = outcome.expect_err("a fault fired, the restore must fail");
                assert!(matches!(err, Error::Io { .. }), "{err:?}");
                assert_eq!(fs::read(&live).expect("read"), before, "nth {nth}");
                assert_eq!(names(dir.path()), listed, "nth {nth}: a copy was left");
                assert_eq!(store.jobs().counts()?[&JobStatus::Ready], 15);
            }
            // Create, a write per 64 KiB of the store, fsync, folder sync.
            let writes = before.len().div_ceil(64 * 1024) as u64;
            let every: Vec<u64> = (1..=3 + writes).collect();
            assert_eq!(fired_at, every, "persistent: {persistent}");
            assert_eq!(store.jobs().counts()?[&JobStatus::Ready], 10);
        }
        Ok(())
    }
}
