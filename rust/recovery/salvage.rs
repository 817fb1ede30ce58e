//! Bringing stranded rows home: a `-wal` an earlier release moved aside
//! (`<db>-wal.unrecovered-<ms>`) holds committed transactions that are in
//! no live file. A file moved aside is not "kept" until its rows are back.
//!
//! A `-wal` is only meaningful next to the database it was written against,
//! so each stranded `-wal` is first made a *bundle*: a copy of the database
//! (`<db>.unrecovered-<ms>`, created exclusively) with the `-wal` moved
//! beside it under the matching name (`<db>.unrecovered-<ms>-wal`). The
//! release that moved the `-wal` had just restored the database it belonged
//! to, so the live database is that base unless it was written since; the
//! bundle must pass `integrity_check` before anything is taken from it.
//!
//! Merging attaches the bundle to the live connection with its WAL index in
//! heap memory (no `-shm`), guarded so nothing checkpoints into it, and
//! copies in one transaction every row of every memtree table whose key the
//! live database lacks (`INSERT OR IGNORE`: a row present in both keeps the
//! live, newer version). Only after that commit is durable is the bundle
//! removed. A bundle that cannot be merged stays, and every open says so.

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::recovery::events;
use crate::recovery::guard;
use crate::sys::files::{aside_path, copy_exclusive, move_no_replace, side_file, sync_parent_dir};

/// The tag of a stranded `-wal` left by earlier releases, after `-wal`.
const LEGACY_TAG: &str = "-wal.unrecovered-";
/// The tag of a bundle, after the database's name.
const BUNDLE_TAG: &str = ".unrecovered";

/// One set of stranded rows beside a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stranded {
    /// The stranded file: a legacy `-wal`, or a bundle's database copy.
    pub path: PathBuf,
    /// True for a legacy `-wal` not yet paired with a database copy.
    pub legacy: bool,
}

/// What [`merge_stranded`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Bundles merged and removed, with the chunk rows each brought back.
    pub merged: Vec<(PathBuf, u64)>,
    /// Stranded files left in place, with the reason.
    pub left: Vec<(PathBuf, String)>,
}

/// Every stranded file beside `db`, oldest name first.
pub fn find_stranded(db: &Path) -> Vec<Stranded> {
    let (Some(dir), Some(name)) = (db.parent(), db.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy().into_owned();
    let legacy_prefix = format!("{name}{LEGACY_TAG}");
    let bundle_prefix = format!("{name}{BUNDLE_TAG}-");
    let mut found: Vec<Stranded> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let file = entry.file_name().to_string_lossy().into_owned();
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if !is_file {
                None
            } else if file.starts_with(&legacy_prefix) {
                Some(Stranded {
                    path: entry.path(),
                    legacy: true,
                })
            } else if let Some(rest) = file.strip_prefix(&bundle_prefix) {
                // `<db>.unrecovered-<ms>` (a bundle's database), not its
                // `-wal`/`-journal`/`-shm`.
                (!rest.contains('-')).then(|| Stranded {
                    path: entry.path(),
                    legacy: false,
                })
            } else {
                None
            }
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// Pairs every legacy stranded `-wal` beside `db` with a copy of the live
/// database, before anything of this open writes to it (the live file is
/// then as close as it can be to the base the `-wal` was written against).
/// Never fails the caller: a `-wal` that cannot be paired stays as it is.
/// Returns every stranded file, adopted ones as their bundles, for
/// [`merge_stranded`] (one scan of the folder per open).
pub fn adopt_legacy_bundles(db: &Path) -> Vec<Stranded> {
    find_stranded(db)
        .into_iter()
        .map(|s| {
            if !s.legacy {
                return s;
            }
            match adopt_legacy(db, &s.path) {
                Ok(bundle) => Stranded {
                    path: bundle,
                    legacy: false,
                },
                Err(e) => {
                    events::stranded_left(db, &s.path, &e.to_string());
                    s
                }
            }
        })
        .collect()
}

/// Pairs a legacy stranded `-wal` with a copy of the live database, making
/// it a bundle. Returns the bundle's database path.
fn adopt_legacy(db: &Path, legacy_wal: &Path) -> Result<PathBuf> {
    let bundle = aside_path(db, BUNDLE_TAG);
    copy_exclusive(db, &bundle)?;
    if let Err(e) = move_no_replace(legacy_wal, &side_file(&bundle, "-wal")) {
        // The copy is ours and holds nothing the live database lacks.
        let _ = fs::remove_file(&bundle);
        return Err(e);
    }
    sync_parent_dir(db)?;
    Ok(bundle)
}

/// The memtree tables present in both schemas, with their shared columns.
fn shared_tables(conn: &Connection, path: &Path) -> Result<Vec<(String, Vec<String>)>> {
    let err = |e| Error::sqlite("salvage: read the schemas", path, e);
    let mut tables = Vec::new();
    let names: Vec<String> = conn
        .prepare(
            "SELECT m.name FROM main.sqlite_master m JOIN side.sqlite_master s
             ON s.name = m.name AND s.type = 'table'
             WHERE m.type = 'table' AND m.name LIKE 'mem\\_tree\\_%' ESCAPE '\\'
             ORDER BY m.name",
        )
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(err)?;
    for table in names {
        let columns = |schema: &str| -> rusqlite::Result<Vec<String>> {
            conn.prepare(&format!(
                "SELECT name FROM pragma_table_info(?1, '{schema}')"
            ))?
            .query_map([&table], |r| r.get(0))?
            .collect()
        };
        let side_cols = columns("side").map_err(err)?;
        let shared: Vec<String> = columns("main")
            .map_err(err)?
            .into_iter()
            .filter(|c| side_cols.contains(c))
            .collect();
        if !shared.is_empty() {
            tables.push((table, shared));
        }
    }
    Ok(tables)
}

fn quoted(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// `INSERT OR IGNORE` of `table`'s shared `columns` from the attached
/// `side` into `main`, with an optional `WHERE` clause (`filter`): a row the
/// live database already holds keeps the live, newer version.
fn copy_sql(table: &str, columns: &[String], filter: &str) -> String {
    let cols = columns
        .iter()
        .map(|c| quoted(c))
        .collect::<Vec<_>>()
        .join(", ");
    let t = quoted(table);
    format!("INSERT OR IGNORE INTO main.{t} ({cols}) SELECT {cols} FROM side.{t} {filter}")
}

/// Runs `f` with the database file `path` attached as `side`, its WAL index
/// in heap memory (no `-shm` is created beside it), and detaches it after,
/// whatever `f` returned. The caller has guarded `conn`, so the detach
/// neither checkpoints into nor deletes anything of `side`.
fn with_side<T>(conn: &Connection, path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let err = |ctx: &'static str| move |e| Error::sqlite(ctx, path, e);
    let name = path
        .to_str()
        .ok_or_else(|| Error::invalid("path", "a side-file path that is not UTF-8"))?;
    conn.execute("ATTACH DATABASE ?1 AS side", [name])
        .map_err(err("salvage: attach"))?;
    let outcome = conn
        .execute_batch("PRAGMA side.locking_mode = EXCLUSIVE;")
        .map_err(err("salvage: exclusive locking"))
        .and_then(|()| f());
    let detached = conn.execute_batch("DETACH DATABASE side;");
    let value = outcome?;
    detached.map_err(err("salvage: detach"))?;
    Ok(value)
}

/// Runs the copy `f` in one write transaction with foreign keys checked at
/// commit (tables are copied by name, so a summary may arrive before its
/// tree); rolls back if `f` or the commit fails.
fn copy_in_transaction<T>(
    conn: &Connection,
    path: &Path,
    f: impl FnOnce() -> rusqlite::Result<T>,
) -> Result<T> {
    let err = |ctx: &'static str| move |e| Error::sqlite(ctx, path, e);
    conn.execute_batch("BEGIN IMMEDIATE; PRAGMA defer_foreign_keys = ON;")
        .map_err(err("salvage: begin"))?;
    let copied = f().and_then(|value| conn.execute_batch("COMMIT;").map(|()| value));
    if copied.is_err() {
        let _ = conn.execute_batch("ROLLBACK;");
    }
    copied.map_err(err("salvage: copy the rows"))
}

/// Copies the rows of the bundle at `bundle` the live database lacks into
/// it, in one transaction. Returns the chunk rows brought back.
fn merge_bundle(conn: &Connection, live: &Path, bundle: &Path) -> Result<u64> {
    let err = |ctx: &'static str| move |e| Error::sqlite(ctx, bundle, e);
    with_side(conn, bundle, || {
        let integrity: String = conn
            .query_row("PRAGMA side.quick_check", [], |r| r.get(0))
            .map_err(err("salvage: check the bundle"))?;
        if integrity != "ok" {
            return Err(Error::sqlite(
                "salvage: the bundle fails its integrity check",
                bundle,
                rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                    Some(integrity),
                ),
            ));
        }
        // A -wal SQLite reads no frame from (a torn or foreign header) would
        // merge as nothing: it is kept rather than taken for merged.
        let frames: i64 = conn
            .query_row("PRAGMA side.wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .map_err(err("salvage: read the bundle's frames"))?;
        let wal_len = fs::metadata(side_file(bundle, "-wal")).map_or(0, |m| m.len());
        if frames <= 0 && wal_len > 0 {
            return Err(Error::sqlite(
                "salvage: SQLite reads no frame from the stranded -wal",
                bundle,
                rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
                    None,
                ),
            ));
        }
        let tables = shared_tables(conn, live)?;
        copy_in_transaction(conn, bundle, || {
            let mut chunks = 0;
            for (table, columns) in &tables {
                let n = conn.execute(&copy_sql(table, columns, ""), [])?;
                if table == "mem_tree_chunks" {
                    chunks = n as u64;
                }
            }
            Ok(chunks)
        })
    })
}

/// Merges every stranded file beside `db` into the live connection `conn`.
/// Never fails the caller: what cannot be merged is reported and kept.
pub fn merge_stranded(conn: &Connection, db: &Path, stranded: Vec<Stranded>) -> MergeReport {
    let mut report = MergeReport::default();
    if stranded.is_empty() {
        return report;
    }
    // While merging, closing the attached bundle must not checkpoint into it.
    if let Err(e) = guard(conn, true, db) {
        for s in stranded {
            report.left.push((s.path, e.to_string()));
        }
        return report;
    }
    for s in stranded {
        let bundle = if s.legacy {
            adopt_legacy(db, &s.path)
        } else {
            Ok(s.path.clone())
        };
        let outcome = bundle.and_then(|bundle| {
            let chunks = merge_bundle(conn, db, &bundle)?;
            remove_bundle(&bundle)?;
            sync_parent_dir(db)?;
            Ok((bundle, chunks))
        });
        match outcome {
            Ok((bundle, chunks)) => {
                events::stranded_merged(db, &bundle, chunks);
                report.merged.push((bundle, chunks));
            }
            Err(e) => {
                events::stranded_left(db, &s.path, &e.to_string());
                report.left.push((s.path, e.to_string()));
            }
        }
    }
    let _ = guard(conn, false, db);
    report
}

/// Removes a merged bundle: its rows are in the live database, durably.
fn remove_bundle(bundle: &Path) -> Result<()> {
    for suffix in ["-wal", "-shm", "-journal", ""] {
        let file = side_file(bundle, suffix);
        if fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
            fs::remove_file(&file)
                .map_err(|e| Error::io("salvage: remove a merged bundle", &file, e))?;
        }
    }
    Ok(())
}

/// Every stranded file beside `db` with the chunk rows it holds (`None`
/// when that cannot be read yet) and what the next open will do with it.
/// Read-only: nothing is paired, checkpointed or moved.
pub fn describe_stranded(db: &Path) -> Vec<(PathBuf, Option<u64>, String)> {
    find_stranded(db)
        .into_iter()
        .map(|s| {
            if s.legacy {
                let note = "a -wal moved aside by an earlier release; the next open pairs it \
                            with the database and merges its rows";
                return (s.path, None, note.to_owned());
            }
            match count_bundle_chunks(&s.path) {
                Ok(n) => (s.path, Some(n), "the next open merges its rows".to_owned()),
                Err(e) => (s.path, None, format!("cannot be read yet: {e}")),
            }
        })
        .collect()
}

/// Chunk rows in a bundle, read through a guarded read-only connection
/// whose WAL index lives in heap memory (no `-shm`, no checkpoint).
fn count_bundle_chunks(bundle: &Path) -> Result<u64> {
    let err = |e| Error::sqlite("salvage: count a bundle's rows", bundle, e);
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(bundle, flags).map_err(err)?;
    guard(&conn, true, bundle)?;
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE;")
        .map_err(err)?;
    conn.query_row("SELECT count(*) FROM mem_tree_chunks", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n.max(0) as u64)
    .map_err(err)
}

/// What [`salvage_quarantined`] brought back from a quarantined file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalvageReport {
    /// Rows copied into the fresh database, over every memtree table.
    pub rows: u64,
    /// Chunk rows among them.
    pub chunks: u64,
    /// Tables whose reading stopped at damage (some rows may be missing).
    pub incomplete: Vec<String>,
}

/// Copies every row still readable from the quarantined (corrupt) database
/// `quarantined` into the fresh live database behind `conn`, in one
/// transaction. The quarantined file is only read, never written, and is
/// kept: what could not be read is still in it.
pub fn salvage_quarantined(
    conn: &Connection,
    live: &Path,
    quarantined: &Path,
) -> Result<SalvageReport> {
    guard(conn, true, live)?;
    let report = with_side(conn, quarantined, || {
        let tables = shared_tables(conn, live)?;
        copy_in_transaction(conn, quarantined, || {
            let mut report = SalvageReport::default();
            for (table, columns) in &tables {
                let (n, complete) = copy_readable_rows(conn, table, columns)?;
                report.rows += n;
                if table == "mem_tree_chunks" {
                    report.chunks = n;
                }
                if !complete {
                    report.incomplete.push(table.clone());
                }
            }
            // Rows a damaged file holds may break the fresh file's foreign
            // keys (a summary whose tree was unreadable): those are dropped
            // from the copy rather than failing the whole salvage.
            let orphans: Vec<(String, i64)> = conn
                .prepare("PRAGMA main.foreign_key_check")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (table, rowid) in orphans {
                conn.execute(
                    &format!("DELETE FROM main.{} WHERE rowid = ?1", quoted(&table)),
                    [rowid],
                )?;
            }
            Ok(report)
        })
    });
    let _ = guard(conn, false, live);
    report
}

/// Copies `table`'s rows from `side` into `main`: all at once, or, where the
/// damaged file stops a full scan, row by row in rowid order, stepping over
/// what cannot be read. Returns the rows copied and whether the scan was
/// complete.
fn copy_readable_rows(
    conn: &Connection,
    table: &str,
    columns: &[String],
) -> rusqlite::Result<(u64, bool)> {
    let t = quoted(table);
    conn.execute_batch("SAVEPOINT salvage_table;")?;
    let bulk = conn.execute(&copy_sql(table, columns, ""), []);
    match bulk {
        Ok(n) => {
            conn.execute_batch("RELEASE salvage_table;")?;
            Ok((n as u64, true))
        }
        Err(_) => {
            conn.execute_batch("ROLLBACK TO salvage_table; RELEASE salvage_table;")?;
            let one = copy_sql(table, columns, "WHERE rowid = ?1");
            let next = format!("SELECT min(rowid) FROM side.{t} WHERE rowid > ?1");
            let (mut copied, mut last) = (0u64, i64::MIN);
            let mut step_over_damage = 0;
            loop {
                let found: rusqlite::Result<Option<i64>> =
                    conn.query_row(&next, [last], |r| r.get(0));
                let rowid = match found {
                    Ok(Some(rowid)) => rowid,
                    Ok(None) => break,
                    // The index of rowids is damaged past `last`: probe a
                    // little further, then give up on this table.
                    Err(_) if step_over_damage < 64 => {
                        step_over_damage += 1;
                        last = last.saturating_add(1);
                        continue;
                    }
                    Err(_) => return Ok((copied, false)),
                };
                if let Ok(n) = conn.execute(&one, [rowid]) {
                    copied += n as u64;
                }
                last = rowid;
            }
            Ok((copied, false))
        }
    }
}
