//! `compact`: gives a store's free pages back to the file system with
//! `VACUUM`, in place, after checking there is room to do it.
//!
//! - **In place, same inode.** `VACUUM` on a rollback-journal database
//!   builds the compacted image in a temporary database, then writes it
//!   back into the original file through the file's own journal, in one
//!   transaction: no rename, so connections that hold the file open (any
//!   process) see the old contents or the compacted ones, and a kill at any
//!   moment leaves the old file whole (the next reader rolls the journal
//!   back) or the compacted one.
//! - **Room first.** The temporary image and the journal can each reach
//!   the size of the database, so before anything is written the free space
//!   of the store's folder (and of SQLite's temporary folder, when that is
//!   another file system) must hold twice the database; otherwise a
//!   [`crate::Error::Sqlite`] with `SQLITE_FULL` (Python's `DiskFullError`)
//!   says how much is missing and nothing is touched.
//! - **Reported**: bytes and free pages before and after.

use std::path::Path;

use rusqlite::OpenFlags;

use super::backup::{open_vfs, sqlite_err};
use crate::db::store::Store;
use crate::error::{Error, Result};

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompactReport {
    /// The file's size before, in bytes.
    pub bytes_before: u64,
    /// The file's size after, in bytes.
    pub bytes_after: u64,
    /// Free pages before (`PRAGMA freelist_count`).
    pub free_pages_before: i64,
    /// Free pages after.
    pub free_pages_after: i64,
}

/// Bytes available to this user on the file system holding `path`.
#[cfg(unix)]
pub fn free_bytes(path: &Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::invalid("path", "contains a NUL byte"))?;
    // SAFETY: statvfs fills the zeroed struct for a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(Error::io(
            "compact: free space",
            path,
            std::io::Error::last_os_error(),
        ));
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ by platform
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Without `statvfs`, the check passes and SQLite's own `SQLITE_FULL` is
/// the answer.
#[cfg(not(unix))]
pub fn free_bytes(_path: &Path) -> Result<u64> {
    Ok(u64::MAX)
}

/// Compacts `store`; see the module docs.
pub fn compact(store: &Store) -> Result<CompactReport> {
    compact_checked(store.path(), free_bytes)
}

/// [`compact`] of the file at `db` with the free-space probe given (tests
/// pass a small disk).
pub fn compact_checked(db: &Path, free: impl Fn(&Path) -> Result<u64>) -> Result<CompactReport> {
    // A file planted at a side-file name is reported as the refusal it is,
    // by `open_vfs` as by every error below.
    let conn = open_vfs(db, OpenFlags::SQLITE_OPEN_READ_WRITE, "compact: open")?;
    let err = |e| crate::vfs::sqlite_or_refused("compact", db, e);
    conn.execute_batch("PRAGMA journal_mode = TRUNCATE; PRAGMA synchronous = FULL;")
        .map_err(err)?;
    let pragma = |name: &str| -> Result<i64> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(err)
    };
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let bytes_before = size(db);
    let free_pages_before = pragma("freelist_count")?;
    let database = u64::try_from(pragma("page_count")? * pragma("page_size")?).unwrap_or(0);
    let folder = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let temp = std::env::temp_dir();
    let same_fs = same_file_system(folder, &temp);
    let needs: [(&Path, u64); 2] = if same_fs {
        [(folder, database.saturating_mul(2)), (folder, 0)]
    } else {
        [(folder, database), (temp.as_path(), database)]
    };
    for (place, needed) in needs {
        if needed == 0 {
            continue;
        }
        let available = free(place)?;
        if available < needed {
            return Err(sqlite_err(
                &format!(
                    "compact: {} needs {needed} free bytes in {} (the database is {database} \
                     bytes; VACUUM writes a temporary copy and a journal), {available} \
                     available; nothing was changed",
                    db.display(),
                    place.display()
                ),
                db,
                rusqlite::ffi::SQLITE_FULL,
            ));
        }
    }
    conn.execute_batch("VACUUM").map_err(err)?;
    // The text indexes are keyed on the implicit rowid of their tables,
    // which VACUUM may renumber (SQLite promises to keep only an explicit
    // INTEGER PRIMARY KEY; its transfer copy keeps them today): each index
    // is checked against its table and rebuilt, in one transaction, if the
    // check fails, so the index always names the rows it indexed.
    rebuild_text_indexes(&conn).map_err(err)?;
    let free_pages_after = pragma("freelist_count")?;
    drop(conn);
    Ok(CompactReport {
        bytes_before,
        bytes_after: size(db),
        free_pages_before,
        free_pages_after,
    })
}

/// Checks every FTS5 index of [`crate::schema::TEXT_INDEXED_TABLES`] that
/// exists against its table and rebuilds the ones out of step, in one write
/// transaction.
fn rebuild_text_indexes(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let rebuilt = (|| {
        for (_, fts) in crate::schema::TEXT_INDEXED_TABLES {
            let exists: bool = conn.query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [fts],
                |r| r.get(0),
            )?;
            let in_step = exists
                && conn
                    .execute_batch(&format!(
                        "INSERT INTO {fts}({fts}, rank) VALUES('integrity-check', 1)"
                    ))
                    .is_ok();
            if exists && !in_step {
                conn.execute_batch(&format!("INSERT INTO {fts}({fts}) VALUES('rebuild')"))?;
            }
        }
        conn.execute_batch("COMMIT")
    })();
    if rebuilt.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    rebuilt
}

#[cfg(unix)]
fn same_file_system(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => true,
    }
}

#[cfg(not(unix))]
fn same_file_system(_a: &Path, _b: &Path) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewJob;

    #[test]
    fn a_full_disk_is_refused_before_anything_is_written() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("chunks.db");
        let (store, _) = Store::open_file(&db)?;
        store
            .jobs()
            .enqueue_many(&vec![NewJob::new("k", "{}"); 2_000])?;
        let before = std::fs::read(&db).expect("read");
        let err = compact_checked(&db, |_| Ok(4096)).unwrap_err();
        assert_eq!(err.sqlite_code(), Some(rusqlite::ffi::SQLITE_FULL), "{err}");
        assert!(err.to_string().contains("nothing was changed"), "{err}");
        assert_eq!(std::fs::read(&db).expect("read"), before);
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_planted_at_the_journal_is_refused_by_name() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("chunks.db");
        let (store, _) = Store::open_file(&db)?;
        store
            .jobs()
            .enqueue_many(&vec![NewJob::new("k", "{}"); 100])?;
        let journal = crate::sys::files::side_file(store.path(), "-journal");
        let _ = std::fs::remove_file(&journal); // TRUNCATE keeps it, empty
        std::fs::create_dir(&journal).expect("plant");
        let before = std::fs::read(&db).expect("read");
        // compact's own connection meets the refusal, not the store's: the
        // core reports it by name, permanent, with nothing written.
        match compact(&store).unwrap_err() {
            Error::PathRefused { path, code, .. } => {
                assert_eq!(path, journal);
                assert_eq!(code, rusqlite::ffi::SQLITE_CANTOPEN_ISDIR);
            }
            other => panic!("not a refusal: {other:?}"),
        }
        assert_eq!(std::fs::read(&db).expect("read"), before);
        std::fs::remove_dir(&journal).expect("unplant");
        compact(&store)?;
        assert_eq!(store.jobs().counts()?.values().sum::<i64>(), 100);
        Ok(())
    }

    #[test]
    fn free_pages_are_given_back() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("chunks.db");
        let (store, _) = Store::open_file(&db)?;
        store
            .jobs()
            .enqueue_many(&vec![NewJob::new("k", "{\"pad\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}"); 5_000])?;
        store.write("empty", |tx| tx.execute("DELETE FROM mem_tree_jobs", []))?;
        let report = compact(&store)?;
        assert!(report.free_pages_before > 100, "{report:?}");
        assert_eq!(report.free_pages_after, 0);
        assert!(report.bytes_after < report.bytes_before, "{report:?}");
        assert_eq!(store.jobs().counts()?.values().sum::<i64>(), 0);
        Ok(())
    }
}
