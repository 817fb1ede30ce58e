//! The journal setup every open applies: TRUNCATE + `synchronous=FULL`, and
//! the in-place migration of a database a prior release left in WAL mode.

use std::path::Path;

use rusqlite::Connection;

use crate::error::classify::{classify_error, ErrorClass};
use crate::error::Result;
use crate::sys::files::sync_parent_dir;
use crate::vfs::sqlite_or_refused;

/// The journal mode memtree runs on.
pub const TARGET_JOURNAL_MODE: &str = "truncate";

/// What [`configure`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalSetup {
    /// The mode SQLite reports after the switch.
    pub journal_mode: String,
    /// True when the file was in WAL mode and is no longer.
    pub migrated_from_wal: bool,
}

/// Applies memtree's connection settings and switches the journal.
///
/// `synchronous=FULL` is only crash-safe with a rollback journal if every
/// commit syncs the journal before the database; `fullfsync` makes that reach
/// the platter on macOS. The journal pragma returns the mode actually in
/// force, which is checked rather than assumed.
pub fn configure(conn: &Connection, path: &Path) -> Result<JournalSetup> {
    let err = |ctx: &'static str| move |e| sqlite_or_refused(ctx, path, e);
    apply_connection_pragmas(conn, path)?;
    let before =
        query_journal_mode(conn, "PRAGMA journal_mode").map_err(err("read journal mode"))?;
    if before == "wal" {
        checkpoint_wal(conn, path)?;
    }
    let journal_mode = switch_to_truncate(conn, &before, path)?;
    // Set after the switch: the sync level applies to the journal now in force.
    conn.execute_batch("PRAGMA synchronous = FULL;")
        .map_err(err("set synchronous"))?;
    let migrated_from_wal = before == "wal" && journal_mode != "wal";
    if migrated_from_wal {
        // The -wal and -shm unlinks must survive power loss too.
        sync_parent_dir(path)?;
    }
    Ok(JournalSetup {
        journal_mode,
        migrated_from_wal,
    })
}

/// The per-connection settings every memtree connection (and the benchmark's)
/// carries before its journal is chosen: `foreign_keys` and `fullfsync`. The
/// busy handler is not among them: [`crate::db::connection::open_through_vfs`]
/// installs it before the open's first read, on every connection this runs on.
pub fn apply_connection_pragmas(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA fullfsync = ON;")
        .map_err(|e| sqlite_or_refused("set connection pragmas", path, e))
}

fn query_journal_mode(conn: &Connection, sql: &str) -> rusqlite::Result<String> {
    conn.query_row(sql, [], |row| row.get::<_, String>(0))
        .map(|mode| mode.to_ascii_lowercase())
}

/// Copies every committed WAL frame into the database before the switch, so
/// the migration never depends on the `-wal` surviving.
fn checkpoint_wal(conn: &Connection, path: &Path) -> Result<()> {
    // The result row is (busy, log frames, checkpointed frames). busy=1 means
    // another connection blocked a full checkpoint; the switch below then
    // fails too and is reported as a journal warning, with the -wal left in
    // place and nothing lost.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(|e| sqlite_or_refused("checkpoint the WAL before migration", path, e))
}

/// Asks for TRUNCATE and returns the mode SQLite actually reports. A refusal
/// is not an error: the store still works (WAL with FULL is durable), but the
/// caller is told through a warning.
fn switch_to_truncate(conn: &Connection, before: &str, path: &Path) -> Result<String> {
    match query_journal_mode(conn, "PRAGMA journal_mode = TRUNCATE") {
        Ok(mode) => Ok(mode),
        // Leaving WAL needs an exclusive lock; another connection holding the
        // file makes SQLite answer BUSY/LOCKED instead of the old mode.
        Err(e) if classify_error(&e) == ErrorClass::Busy => Ok(before.to_owned()),
        Err(e) => Err(sqlite_or_refused("switch journal mode", path, e)),
    }
}

/// The warning text for a journal mode other than TRUNCATE, or `None`.
pub fn journal_warning(mode: &str, path: &Path) -> Option<String> {
    (mode != TARGET_JOURNAL_MODE).then(|| {
        format!(
            "SQLite kept journal_mode={mode} instead of {TARGET_JOURNAL_MODE} for {} \
             (another connection holds the file); memtree retries on the next open",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database a prior release left in WAL mode, with a folder planted
    /// at its `-journal` name after the connection opened: the journal
    /// setup (its first read, of the journal mode, looks for a hot journal) fails as
    /// the permanent refusal naming the folder, and the file stays in WAL
    /// mode with its rows; removed, the setup leaves WAL.
    #[cfg(unix)]
    #[test]
    fn a_folder_planted_at_the_journal_fails_the_setup_by_name() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal.db");
        let old = Connection::open(&path).expect("open");
        let mode: String = old
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .expect("wal");
        assert_eq!(mode, "wal");
        old.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .expect("write");
        drop(old);
        let conn = crate::db::connection::open_through_vfs(&path)?;
        let journal = crate::sys::files::side_file(&path, "-journal");
        std::fs::create_dir(&journal).expect("plant");
        let before = std::fs::read(&path).expect("read");
        match configure(&conn, &path).unwrap_err() {
            crate::error::Error::PathRefused { path, code, .. } => {
                assert_eq!(path, journal);
                assert_eq!(code, rusqlite::ffi::SQLITE_CANTOPEN_ISDIR);
            }
            other => panic!("not a refusal: {other:?}"),
        }
        assert_eq!(std::fs::read(&path).expect("read"), before);
        std::fs::remove_dir(&journal).expect("unplant");
        let setup = configure(&conn, &path)?;
        assert_eq!(setup.journal_mode, TARGET_JOURNAL_MODE);
        assert!(setup.migrated_from_wal);
        Ok(())
    }
}
