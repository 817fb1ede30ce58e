//! Bringing rows home: from a quarantined copy, and — only on request —
//! from a side file an earlier release left.
//!
//! **Salvage** copies every row still readable from a damaged copy into the
//! image a quarantine rebuilds the live file from ([`salvage_rows`]), row by
//! row past damaged pages.
//!
//! **Stranded files.** A `-wal` an earlier release moved aside
//! (`<db>-wal.unrecovered-<ms>`) or a bundle it left (`<db>.unrecovered-<ms>`)
//! may hold committed rows in no live file, but memtree cannot prove it
//! wrote it: a planted file would otherwise reach the user's tables and job
//! queue. So no open reads or merges one; every open reports it
//! ([`describe_unadopted`]) and keeps a copy of the live database as the
//! base of a stranded `-wal` before writing ([`keep_legacy_bases`]).
//! [`adopt`] (`memtree recover --adopt FILE`) merges one explicitly: it
//! refuses at once anything but a regular file with one link of bounded
//! size, attaches a private copy (never the file where it lies), checks the
//! schema and `quick_check` within a time budget, and copies in one
//! transaction the rows the live database lacks (`INSERT OR IGNORE`: a row
//! present in both keeps the live version). Only after that commit is the
//! file removed.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::recovery::guard;
use crate::sys::files::{aside_path, create_exclusive, side_file, sync_parent_dir};

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
            } else if file.starts_with(&legacy_prefix) && !file.ends_with(BASE_SUFFIX) {
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

/// Every stranded file beside `db` with what an open says of it. Nothing
/// is opened or read: a file memtree cannot prove it wrote is never merged
/// on open, only by an explicit `memtree recover --adopt FILE`.
pub fn describe_unadopted(db: &Path) -> Vec<(PathBuf, String)> {
    find_stranded(db)
        .into_iter()
        .map(|s| {
            let what = if s.legacy {
                "a -wal an earlier release moved aside"
            } else {
                "a side bundle an earlier release left"
            };
            let note = format!(
                "{what}; not merged automatically: check it and merge it with \
                 `memtree recover --adopt {}` (`--dry-run` shows what it brings in)",
                s.path.display()
            );
            (s.path, note)
        })
        .collect()
}

/// The suffix of the copy of the live database an open keeps beside a
/// legacy stranded `-wal` (`<db>-wal.unrecovered-<ms>.base`).
const BASE_SUFFIX: &str = ".base";

/// The base copy kept for the legacy `-wal` at `wal`.
fn base_of(wal: &Path) -> PathBuf {
    side_file(wal, BASE_SUFFIX)
}

/// Keeps, before an open writes anything, a byte copy of the live database
/// beside every legacy stranded `-wal` that has none yet: a `-wal`'s frames
/// apply only to the database they were written against, and the release
/// that moved it aside had restored that base; once this build migrates the
/// file, `recover --adopt` could no longer pair them. Nothing is merged,
/// and nothing but this copy (created exclusively) is written. Never fails
/// the caller: a copy that cannot be made is reported.
pub fn keep_legacy_bases(db: &Path) {
    for s in find_stranded(db).into_iter().filter(|s| s.legacy) {
        let base = base_of(&s.path);
        if fs::symlink_metadata(&base).is_ok() {
            continue;
        }
        let kept = fs::File::open(db)
            .map_err(|e| Error::io("keep the base of a stranded -wal", db, e))
            .and_then(|f| copy_open_file(f, &base))
            .and_then(|()| sync_parent_dir(db));
        if let Err(e) = kept {
            let _ = fs::remove_file(&base);
            crate::recovery::events::stranded_left(db, &s.path, &e.to_string());
        }
    }
}

/// The memtree tables present in both schemas, with their shared columns.
fn shared_tables(conn: &Connection, path: &Path) -> Result<Vec<(String, Vec<String>)>> {
    let err = |e| crate::vfs::sqlite_or_refused("salvage: read the schemas", path, e);
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
    let err = |ctx: &'static str| move |e| crate::vfs::sqlite_or_refused(ctx, path, e);
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
    let err = |ctx: &'static str| move |e| crate::vfs::sqlite_or_refused(ctx, path, e);
    conn.execute_batch("BEGIN IMMEDIATE; PRAGMA defer_foreign_keys = ON;")
        .map_err(err("salvage: begin"))?;
    let copied = f().and_then(|value| conn.execute_batch("COMMIT;").map(|()| value));
    if copied.is_err() {
        let _ = conn.execute_batch("ROLLBACK;");
    }
    copied.map_err(err("salvage: copy the rows"))
}

/// What [`adopt`] brought in (or, on a dry run, would bring in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptReport {
    /// Rows the live database lacked, by table.
    pub rows: Vec<(String, u64)>,
    /// Chunk rows among them.
    pub chunks: u64,
    /// True when nothing was written (`--dry-run`).
    pub dry_run: bool,
    /// True when the adopted file was removed after its rows were merged.
    pub removed: bool,
}

/// The largest file [`adopt`] copies in: anything larger is refused at
/// once rather than copied and checked for minutes.
pub const ADOPT_MAX_BYTES: u64 = 4 << 30;
/// The time the checks of a foreign file (its schema, `quick_check`) may
/// take before they are given up and the file refused: a hostile schema's
/// CHECK constraints or generated columns are evaluated by `quick_check`
/// (with `trusted_schema` off, every built-in function still is).
pub const FOREIGN_CHECK_BUDGET: Duration = Duration::from_secs(10);
/// The longest budget [`set_foreign_check_budget`] takes.
pub const MAX_FOREIGN_CHECK_BUDGET: Duration = Duration::from_secs(3600);

/// The budget in force, in microseconds: [`FOREIGN_CHECK_BUDGET`] unless a
/// test set another ([`set_foreign_check_budget`]).
static CHECK_BUDGET_US: AtomicU64 = AtomicU64::new(FOREIGN_CHECK_BUDGET.as_micros() as u64);

/// Sets the budget of the checks of a foreign file (for every adoption in
/// this process); returns the previous one. A test seam
/// (`memtree.testing.set_adopt_check_budget`): a test proves the bound with
/// a small budget rather than by waiting out the real one. More than
/// [`MAX_FOREIGN_CHECK_BUDGET`] is refused and changes nothing.
pub fn set_foreign_check_budget(budget: Duration) -> Result<Duration> {
    if budget > MAX_FOREIGN_CHECK_BUDGET {
        return Err(Error::invalid(
            "seconds",
            format!(
                "must be at most {} seconds",
                MAX_FOREIGN_CHECK_BUDGET.as_secs()
            ),
        ));
    }
    // At most 3.6e9 microseconds: the cast cannot truncate.
    let previous = CHECK_BUDGET_US.swap(budget.as_micros() as u64, Ordering::Relaxed);
    Ok(Duration::from_micros(previous))
}

/// The budget of the checks of a foreign file now.
pub fn foreign_check_budget() -> Duration {
    Duration::from_micros(CHECK_BUDGET_US.load(Ordering::Relaxed))
}

/// Opens `file` for reading only if it is a regular file with one link,
/// no larger than [`ADOPT_MAX_BYTES`], never following a link and never
/// waiting (a FIFO planted between the check and the open is opened
/// non-blocking and refused by the `fstat` after it).
fn open_foreign(file: &Path) -> Result<(fs::File, u64)> {
    let refuse = |why: &str| Error::invalid("file", format!("{}: {why}", file.display()));
    let meta = fs::symlink_metadata(file).map_err(|e| Error::io("adopt: inspect", file, e))?;
    if !meta.file_type().is_file() {
        return Err(refuse(
            "not a regular file (a link, FIFO, device or folder)",
        ));
    }
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let opened = options
        .open(file)
        .map_err(|e| Error::io("adopt: open", file, e))?;
    let meta = opened
        .metadata()
        .map_err(|e| Error::io("adopt: inspect", file, e))?;
    if !meta.file_type().is_file() {
        return Err(refuse("not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.nlink() != 1 {
            return Err(refuse(
                "has other hard links (it may be another database's file)",
            ));
        }
    }
    if meta.len() > ADOPT_MAX_BYTES {
        return Err(refuse("larger than memtree adopts"));
    }
    Ok((opened, meta.len()))
}

/// Copies the open `source` into a new file `to` (created exclusively) and
/// syncs it.
fn copy_open_file(mut source: fs::File, to: &Path) -> Result<()> {
    let mut dest = create_exclusive(to).map_err(|e| Error::io("adopt: create a copy", to, e))?;
    std::io::copy(&mut source, &mut dest)
        .and_then(|_| dest.sync_all())
        .map_err(|e| Error::io("adopt: write a copy", to, e))
}

/// True when `file` starts with a WAL header's magic (a `-wal` alone).
fn is_wal_file(file: &mut fs::File) -> bool {
    use std::io::{Read, Seek};
    let mut magic = [0u8; 4];
    let is_wal = file.read_exact(&mut magic).is_ok()
        && matches!(u32::from_be_bytes(magic), 0x377f_0682 | 0x377f_0683);
    let _ = file.rewind();
    is_wal
}

/// Interrupts every statement of `conn` that runs past a deadline, while
/// alive: a foreign schema's CHECK constraints or generated columns are
/// evaluated by `quick_check`, and a hostile one can make that slow.
struct Deadline<'c> {
    conn: &'c Connection,
    budget: Duration,
    at: Box<DeadlineState>,
}

/// What the progress handler reads and writes (boxed: its address is the
/// handler's argument).
struct DeadlineState {
    at: Instant,
    /// Set when the handler interrupted a statement, so the interrupt is
    /// reported as the budget running out (and a test can tell it fired).
    fired: AtomicBool,
}

impl<'c> Deadline<'c> {
    fn new(conn: &'c Connection, budget: Duration) -> Self {
        unsafe extern "C" fn past(arg: *mut std::ffi::c_void) -> std::ffi::c_int {
            // SAFETY: `arg` is the boxed state owned by the Deadline,
            // which removes this handler before dropping the box.
            let state = unsafe { &*(arg as *const DeadlineState) };
            let past = Instant::now() >= state.at;
            if past {
                state.fired.store(true, Ordering::Relaxed);
            }
            std::ffi::c_int::from(past)
        }
        let at = Box::new(DeadlineState {
            at: Instant::now() + budget,
            fired: AtomicBool::new(false),
        });
        // SAFETY: the handle is valid; the box outlives the handler.
        unsafe {
            rusqlite::ffi::sqlite3_progress_handler(
                conn.handle(),
                1000,
                Some(past),
                (&*at as *const DeadlineState).cast_mut().cast(),
            );
        }
        Deadline { conn, budget, at }
    }

    /// `e`, or — when this deadline interrupted the statement — the
    /// refusal of `file` for taking longer than the budget (still
    /// `SQLITE_INTERRUPT`, with a message that says why).
    fn explain(&self, file: &Path, e: Error) -> Error {
        if !self.at.fired.load(Ordering::Relaxed)
            || e.sqlite_code() != Some(rusqlite::ffi::SQLITE_INTERRUPT)
        {
            return e;
        }
        crate::vfs::sqlite_or_refused(
            "adopt: check the file",
            file,
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT),
                Some(format!(
                    "checking the file took longer than its time budget ({:.3} s) and was \
                     interrupted; the file is refused (a schema whose checks are this slow \
                     is not one memtree wrote)",
                    self.budget.as_secs_f64()
                )),
            ),
        )
    }
}

impl Drop for Deadline<'_> {
    fn drop(&mut self) {
        // SAFETY: clears the handler before the box it reads is freed.
        unsafe {
            rusqlite::ffi::sqlite3_progress_handler(
                self.conn.handle(),
                0,
                None,
                std::ptr::null_mut(),
            )
        };
    }
}

/// Refuses an attached `side` that is not a memtree database this build
/// can read: no `mem_tree_chunks`, or a newer schema.
fn check_side_is_memtree(conn: &Connection, file: &Path) -> Result<()> {
    let err = |e| crate::vfs::sqlite_or_refused("adopt: read the file's schema", file, e);
    let version: i64 = conn
        .query_row("PRAGMA side.user_version", [], |r| r.get(0))
        .map_err(err)?;
    let has_chunks: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM side.sqlite_master
             WHERE type = 'table' AND name = 'mem_tree_chunks'",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    if !has_chunks {
        return Err(Error::NotMemtree {
            path: file.to_owned(),
            reason: "no mem_tree_chunks table".to_owned(),
        });
    }
    if version > crate::schema::CURRENT_VERSION {
        return Err(Error::SchemaTooNew {
            path: file.to_owned(),
            found: version,
            supported: crate::schema::CURRENT_VERSION,
        });
    }
    let integrity: String = conn
        .query_row("PRAGMA side.quick_check", [], |r| r.get(0))
        .map_err(|e| {
            crate::vfs::sqlite_or_refused("adopt: check the file (bounded in time)", file, e)
        })?;
    if integrity != "ok" {
        return Err(crate::vfs::sqlite_or_refused(
            "adopt: the file fails its integrity check",
            file,
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(integrity),
            ),
        ));
    }
    Ok(())
}

/// Merges the rows of `file` — a memtree database, or a `-wal` an earlier
/// release moved aside — that the live database behind `conn` lacks, in one
/// transaction (rolled back on a dry run). `file` is refused unless it is
/// a regular file with one link and a memtree schema; it is never opened
/// where it lies: a private copy (with, for a `-wal`, a copy of the live
/// database as its base, taken under a read transaction) is attached,
/// checked within a time budget, merged and removed. After a merge that
/// committed, `file` itself is removed: its rows are in the live database.
pub fn adopt(conn: &Connection, db: &Path, file: &Path, dry_run: bool) -> Result<AdoptReport> {
    let (mut source, _len) = open_foreign(file)?;
    let bundle = aside_path(db, ".adopting");
    let wal = is_wal_file(&mut source);
    let kept_base = base_of(file);
    let copied = if wal && fs::symlink_metadata(&kept_base).is_ok() {
        // The base an earlier open kept before it wrote (checked like the
        // file itself: regular, one link, bounded).
        open_foreign(&kept_base)
            .and_then(|(f, _)| copy_open_file(f, &bundle))
            .and_then(|()| copy_open_file(source, &side_file(&bundle, "-wal")))
    } else if wal {
        // A -wal's frames apply only to the database it was written
        // against: without a kept base, the live file as it is now (the
        // release that moved it aside had restored that base).
        let err = |e| crate::vfs::sqlite_or_refused("adopt: hold a read transaction", db, e);
        conn.execute_batch("BEGIN; SELECT count(*) FROM main.sqlite_master;")
            .map_err(err)?;
        let base = fs::File::open(db)
            .map_err(|e| Error::io("adopt: open the live database", db, e))
            .and_then(|f| copy_open_file(f, &bundle));
        let _ = conn.execute_batch("COMMIT;");
        base.and_then(|()| copy_open_file(source, &side_file(&bundle, "-wal")))
    } else {
        copy_open_file(source, &bundle)
    };
    let outcome = copied.and_then(|()| {
        guard(conn, true, db)?;
        let merged = with_side(conn, &bundle, || {
            // The checks of the foreign file are bounded in time; the merge
            // of a file that passed them is not.
            let deadline = Deadline::new(conn, foreign_check_budget());
            let checked = (|| {
                check_side_is_memtree(conn, file)?;
                if wal {
                    let frames: i64 = conn
                        .query_row("PRAGMA side.wal_checkpoint(PASSIVE)", [], |r| r.get(1))
                        .map_err(|e| {
                            crate::vfs::sqlite_or_refused("adopt: read the -wal's frames", file, e)
                        })?;
                    if frames <= 0 {
                        return Err(crate::vfs::sqlite_or_refused(
                            "adopt: SQLite reads no frame from the -wal against this database",
                            file,
                            rusqlite::Error::SqliteFailure(
                                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
                                None,
                            ),
                        ));
                    }
                }
                Ok(())
            })();
            checked.map_err(|e| deadline.explain(file, e))?;
            drop(deadline);
            let tables = shared_tables(conn, db)?;
            merge_rows(conn, file, &tables, dry_run)
        });
        let _ = guard(conn, false, db);
        merged
    });
    let _ = remove_bundle(&bundle);
    let mut report = outcome?;
    if !dry_run {
        fs::remove_file(file).map_err(|e| Error::io("adopt: remove the merged file", file, e))?;
        if wal && fs::symlink_metadata(&kept_base).is_ok_and(|m| m.is_file()) {
            fs::remove_file(&kept_base)
                .map_err(|e| Error::io("adopt: remove the merged -wal's base", &kept_base, e))?;
        }
        sync_parent_dir(file)?;
        report.removed = true;
    }
    Ok(report)
}

/// Copies the rows of `tables` the live database lacks from `side`, in one
/// transaction that is committed, or rolled back on a dry run.
fn merge_rows(
    conn: &Connection,
    file: &Path,
    tables: &[(String, Vec<String>)],
    dry_run: bool,
) -> Result<AdoptReport> {
    let err = |e| crate::vfs::sqlite_or_refused("adopt: copy the rows", file, e);
    conn.execute_batch("BEGIN IMMEDIATE; PRAGMA defer_foreign_keys = ON;")
        .map_err(err)?;
    let copied = (|| -> rusqlite::Result<AdoptReport> {
        let mut report = AdoptReport {
            dry_run,
            ..AdoptReport::default()
        };
        for (table, columns) in tables {
            let n = conn.execute(&copy_sql(table, columns, ""), [])? as u64;
            if table == "mem_tree_chunks" {
                report.chunks = n;
            }
            report.rows.push((table.clone(), n));
        }
        Ok(report)
    })();
    let end = if dry_run || copied.is_err() {
        "ROLLBACK;"
    } else {
        "COMMIT;"
    };
    let ended = conn.execute_batch(end);
    if ended.is_err() && end == "COMMIT;" {
        let _ = conn.execute_batch("ROLLBACK;");
    }
    let report = copied.map_err(err)?;
    ended.map_err(err)?;
    Ok(report)
}

/// Removes a bundle memtree made (its rows are merged, or it was only a
/// private copy of a file that stays where it was).
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

/// Every stranded file beside `db`, with what to do about it. Nothing is
/// opened or read (a planted file may be a FIFO, a link or huge): the
/// chunk rows are `None`; `memtree recover --adopt FILE --dry-run` counts
/// them after checking the file.
pub fn describe_stranded(db: &Path) -> Vec<(PathBuf, Option<u64>, String)> {
    describe_unadopted(db)
        .into_iter()
        .map(|(path, note)| (path, None, note))
        .collect()
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
    let report = salvage_rows(conn, live, quarantined);
    let _ = guard(conn, false, live);
    report
}

/// [`salvage_quarantined`] into any connection `conn` (the in-memory image
/// a quarantine rebuilds the live file from, see [`crate::recovery::quarantine`]):
/// `live` names the database in messages only.
pub fn salvage_rows(conn: &Connection, live: &Path, quarantined: &Path) -> Result<SalvageReport> {
    with_side(conn, quarantined, || {
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
    })
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
