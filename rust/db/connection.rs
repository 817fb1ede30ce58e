//! One shared connection per database file: the cache, the per-path init
//! lock, opening with recovery, the circuit breaker and quarantine.
//!
//! The reference cached one connection per path behind a mutex, so WAL's one
//! benefit (concurrent readers) was unused while its side files (`-wal`,
//! `-shm`) caused most of its crash reports. memtree keeps the single cached
//! connection and runs it on the rollback journal instead (see [`journal`]).
//!
//! Lock order: the per-path init lock, then a database's connection mutex.
//! Write calls reach the connection mutex through the database's
//! [`WriteGroup`] (see [`group_commit`]): a group's leader holds the mutex
//! from its `BEGIN` to the end of its `COMMIT`, so every other user of the
//! connection (a read, a quarantine) waits for the whole group.
//!
//! A cached connection is only handed out while the path still names the
//! file it opened: each [`Database`] records the file's identity (device and
//! inode on Unix) and a new open compares it with what is at the path now. A
//! file renamed away or deleted with its folder keeps its connection for the
//! handles already open (SQLite answers their writes with
//! `SQLITE_READONLY_DBMOVED`); the new open gets the file now at the path.
//!
//! Fork: the registry is a [`ForkLocal`], so a child starts with an empty
//! cache and fresh locks, and a [`Database`] inherited from the parent
//! refuses every call with [`Error::Forked`] without touching its mutexes
//! (a thread of the parent may have held them at the fork) and is never
//! closed in the child (see [`fork`]).
//!
//! [`journal`]: crate::db::journal
//! [`fork`]: crate::sys::fork
//! [`group_commit`]: crate::db::group_commit

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rusqlite::{Connection, OpenFlags};

use crate::db::breaker;
use crate::db::group_commit::{GroupCommit, GroupStats};
use crate::db::journal::{self, JournalSetup, TARGET_JOURNAL_MODE};
use crate::db::write::{SharedError, SqliteTx};
use crate::error::classify::ErrorClass;
use crate::error::{Error, Result};
use crate::recovery;
use crate::recovery::events;
use crate::recovery::quarantine;
use crate::recovery::salvage;
use crate::schema;
use crate::sys::fork::{self, ForkLocal};
use crate::sys::path_guard::{self, Claim};

/// The group-commit coordinator of a database's write calls.
pub(crate) type WriteGroup = GroupCommit<SqliteTx, SharedError>;

/// What tells one file from another at the same path: device and inode
/// on Unix. Elsewhere the creation time stands in: Windows, the one other
/// platform memtree builds for, refuses to rename or delete a file SQLite
/// holds open (no `FILE_SHARE_DELETE`), so a file at the path with another
/// creation time is a replacement made after every handle closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
    #[cfg(not(unix))]
    created: Option<std::time::SystemTime>,
}

/// The identity of the file at `path` now, `None` if there is none.
fn file_id(path: &Path) -> Option<FileId> {
    let meta = fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
    #[cfg(not(unix))]
    {
        Some(FileId {
            created: meta.created().ok(),
        })
    }
}

/// The shared state of one open database file.
#[derive(Debug)]
pub struct Database {
    path: PathBuf,
    /// The fork generation the connection was opened in; any other
    /// generation is a child process that must not use it.
    generation: u64,
    /// `None` only transiently, while quarantine swaps the file underneath.
    conn: Mutex<Option<Connection>>,
    journal_mode: Mutex<String>,
    /// The file the connection opened (changed by quarantine only), `None`
    /// if it could not be read; then no later open trusts this connection.
    identity: Mutex<Option<FileId>>,
    /// Concurrent write calls share commits through it (see
    /// [`crate::db::group_commit`]).
    group: WriteGroup,
}

impl Drop for Database {
    fn drop(&mut self) {
        if self.generation != fork::generation() {
            // A child dropping a handle it inherited. Closing the connection
            // would roll back the parent's open transaction into the file
            // they share, and its mutex may be locked by a thread that does
            // not exist here: the whole slot is leaked instead (one file
            // descriptor and the page cache, once per inherited database).
            std::mem::forget(std::mem::replace(&mut self.conn, Mutex::new(None)));
        }
    }
}

/// Locks a mutex even if a panicking thread poisoned it: the guarded value is
/// a connection whose open transaction (if any) rolled back when it unwound.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Database {
    /// The canonical path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails with [`Error::Forked`] in a process forked after this
    /// database was opened, before any of its mutexes is touched.
    fn check_process(&self) -> Result<()> {
        if self.generation == fork::generation() {
            Ok(())
        } else {
            Err(Error::Forked {
                path: self.path.clone(),
            })
        }
    }

    /// The journal mode SQLite last reported for this connection.
    pub fn journal_mode(&self) -> Result<String> {
        self.check_process()?;
        Ok(lock(&self.journal_mode).clone())
    }

    /// The group-commit coordinator every write call goes through.
    pub(crate) fn write_group(&self) -> Result<&WriteGroup> {
        self.check_process()?;
        Ok(&self.group)
    }

    /// Runs `f` with exclusive use of the connection.
    pub fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        self.check_process()?;
        let mut guard = lock(&self.conn);
        match guard.as_mut() {
            Some(conn) => f(conn),
            None => Err(Error::Closed),
        }
    }

    /// Wraps a SQLite error with `context` and this database's path. The
    /// closure borrows `context`: nothing is allocated unless it runs (it is
    /// built on every call's success path, by `map_err`).
    ///
    /// A `CANTOPEN` that is the VFS refusing a FIFO, device, socket, folder
    /// or link planted at the journal or `-wal` name after the open becomes
    /// the permanent [`Error::PathRefused`] naming that file: SQLite's own
    /// `CANTOPEN` is transient, and a worker would retry a path that cannot
    /// work until someone removes the file.
    pub fn err<'a>(&'a self, context: &'a str) -> impl FnOnce(rusqlite::Error) -> Error + 'a {
        move |e| crate::vfs::sqlite_or_refused(context, &self.path, e)
    }

    /// Copies the (corrupt) file aside and rebuilds it in place, on the same
    /// inode, with every row still readable (see [`crate::recovery::quarantine`]),
    /// under the init lock and the connection mutex: every handle sharing
    /// this database continues on the rebuilt file, and other processes see
    /// the old file or the rebuilt one. Returns the copy's name. `cause` is
    /// the failure that revealed the corruption.
    ///
    /// If the path no longer names this database's file (it was moved or
    /// deleted while open), nothing is touched: the file now at the path is
    /// not the one found corrupt.
    pub fn quarantine_and_rebuild(&self, cause: &Error) -> Result<PathBuf> {
        self.check_process()?;
        let init_lock = init_lock_for(&self.path);
        let _init = lock(&init_lock);
        let mut guard = lock(&self.conn);
        if !self.still_at_path() {
            // Plain Error::sqlite: a code memtree chose (the file moved), no open behind it.
            return Err(Error::sqlite(
                "quarantine",
                &self.path,
                rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY_DBMOVED),
                    Some("the database file was moved or deleted while open".to_owned()),
                ),
            ));
        }
        if let Some(old) = guard.take() {
            // The file keeps its inode, so the old connection would see the
            // rebuilt file; a fresh one starts from a clean configuration.
            let _ = old.close();
        }
        let (quarantined, conn, setup) = quarantine_and_reopen(&self.path, cause)?;
        *lock(&self.journal_mode) = setup.journal_mode;
        *lock(&self.identity) = file_id(&self.path);
        *guard = Some(conn);
        Ok(quarantined)
    }

    /// True while the path names the file this connection opened.
    fn still_at_path(&self) -> bool {
        let opened = *lock(&self.identity);
        opened.is_some() && file_id(&self.path) == opened
    }
}

/// What opening a database found, for the caller to report.
#[derive(Debug, Clone)]
pub struct OpenOutcome {
    /// The shared database.
    pub db: Arc<Database>,
    /// Set when the journal is not TRUNCATE: SQLite refused the switch.
    pub journal_warning: Option<String>,
    /// True when this open made the connection; false when it joined the
    /// one other handles of this process share.
    pub opened: bool,
}

/// Per-path counters the tests read to prove "exactly once" claims.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenCounters {
    /// Connections opened for this path by this process.
    pub connections_opened: u64,
    /// Opens that committed at least one schema step.
    pub schema_inits: u64,
    /// Opens that migrated the file out of WAL mode.
    pub wal_migrations: u64,
    /// Side-file recoveries run after an I/O error at open.
    pub recoveries: u64,
    /// Corrupt files moved aside.
    pub quarantines: u64,
    /// Side files merged by `memtree recover --adopt` ([`adopt_file`]).
    pub stranded_merged: u64,
}

#[derive(Default)]
struct Registry {
    live: HashMap<PathBuf, Weak<Database>>,
    init_locks: HashMap<PathBuf, Arc<Mutex<()>>>,
    counters: HashMap<PathBuf, OpenCounters>,
}

/// Per fork generation: a child never sees the parent's cache or locks.
static REGISTRY: ForkLocal<Mutex<Registry>> = ForkLocal::new(Mutex::default);

/// Counters for `path` (any spelling of it).
pub fn open_counters(path: &Path) -> Result<OpenCounters> {
    let key = canonical_db_path(path)?;
    Ok(lock(REGISTRY.get())
        .counters
        .get(&key)
        .copied()
        .unwrap_or_default())
}

fn bump(key: &Path, f: impl FnOnce(&mut OpenCounters)) {
    f(lock(REGISTRY.get())
        .counters
        .entry(key.to_owned())
        .or_default());
}

fn init_lock_for(key: &Path) -> Arc<Mutex<()>> {
    Arc::clone(
        lock(REGISTRY.get())
            .init_locks
            .entry(key.to_owned())
            .or_default(),
    )
}

/// The canonical absolute path of a database file that may not exist yet:
/// its folder must exist; the file name is kept as given.
pub fn canonical_db_path(path: &Path) -> Result<PathBuf> {
    if let Ok(existing) = fs::canonicalize(path) {
        return Ok(existing);
    }
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid("path", format!("{} names no file", path.display())))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = fs::canonicalize(parent)
        .map_err(|e| Error::io("the database's folder is not accessible", parent, e))?;
    Ok(dir.join(name))
}

/// What the group commits of the database open at `path` did (all zero if
/// it is not open in this process).
pub fn group_stats(path: &Path) -> Result<GroupStats> {
    let key = canonical_db_path(path)?;
    let db = lock(REGISTRY.get()).live.get(&key).and_then(Weak::upgrade);
    Ok(db.map_or_else(GroupStats::default, |db| db.group.stats()))
}

/// Zeroes the group-commit counters of the database open at `path`.
pub fn reset_group_stats(path: &Path) -> Result<()> {
    let key = canonical_db_path(path)?;
    let db = lock(REGISTRY.get()).live.get(&key).and_then(Weak::upgrade);
    if let Some(db) = db {
        db.group.reset_stats();
    }
    Ok(())
}

/// `memtree recover PATH --adopt FILE`: merges the rows of `file` the
/// database at `path` lacks, after checking it ([`salvage::adopt`]). A
/// merge that committed (and removed `file`) is logged and counted in
/// [`OpenCounters::stranded_merged`]; a dry run or a refusal counts nothing.
pub fn adopt_file(path: &Path, file: &Path, dry_run: bool) -> Result<salvage::AdoptReport> {
    let db = open_database(path)?.db;
    let report = db.with_conn(|conn| salvage::adopt(conn, db.path(), file, dry_run))?;
    if report.removed {
        bump(db.path(), |c| c.stranded_merged += 1);
        events::stranded_merged(db.path(), file, report.chunks);
    }
    Ok(report)
}

/// Forgets the circuit-breaker state of `path`.
pub fn invalidate(path: &Path) -> Result<()> {
    breaker::reset(&canonical_db_path(path)?);
    Ok(())
}

/// Opens (or joins) the shared connection for `path`.
///
/// Concurrent first callers serialise on a per-path init lock, so the schema
/// is applied and the journal switched exactly once; later callers get the
/// cached connection. A transient I/O failure triggers one side-file recovery
/// and one retry; repeated failures open the circuit breaker; a corrupt file
/// is quarantined and replaced by a fresh one, and the caller is told.
pub fn open_database(path: &Path) -> Result<OpenOutcome> {
    open_database_as(path, Claim::Workspace)
}

/// [`open_database`] for a path claimed as `claim`: an explicit path's
/// header is checked ([`path_guard::check_header`]) before its first
/// connection opens.
pub fn open_database_as(path: &Path, claim: Claim) -> Result<OpenOutcome> {
    let key = canonical_db_path(path)?;
    breaker::admit(&key)?;
    let init_lock = init_lock_for(&key);
    let _init = lock(&init_lock);
    let cached = lock(REGISTRY.get()).live.get(&key).and_then(Weak::upgrade);
    // A connection whose file was moved away or deleted stays with the
    // handles that have it; this open takes what is at the path now (the
    // registry entry is replaced below).
    if let Some(db) = cached.filter(|db| db.still_at_path()) {
        let journal_warning = retry_journal_switch(&db)?;
        return Ok(OpenOutcome {
            db,
            journal_warning,
            opened: false,
        });
    }
    // Re-checked under the lock: only one caller makes the half-open attempt.
    breaker::admit(&key)?;
    // Under the init lock and before any memtree connection has the file:
    // reading the header cannot drop a connection's POSIX locks here.
    path_guard::check_header(&key, claim)?;
    let (conn, setup) = match open_with_recovery(&key) {
        Ok(opened) => opened,
        Err(e) if e.class() == ErrorClass::Corrupt => {
            // The fresh database is built now, so the next open just works.
            let (quarantined, conn, setup) = quarantine_and_reopen(&key, &e)?;
            breaker::record_success(&key);
            register(&key, conn, setup);
            return Err(Error::Quarantined {
                path: key,
                quarantined,
                source: Box::new(e),
            });
        }
        Err(e) => {
            if let Some(failures) = breaker::record_failure(&key, e.sqlite_code()) {
                events::circuit_tripped(&key, failures, e.sqlite_code());
            }
            return Err(e);
        }
    };
    breaker::record_success(&key);
    let journal_warning = journal::journal_warning(&setup.journal_mode, &key);
    Ok(OpenOutcome {
        db: register(&key, conn, setup),
        journal_warning,
        opened: true,
    })
}

/// Copies the corrupt file at `key` aside and rebuilds it in place, counts
/// and reports it, and opens a connection to the rebuilt file. The caller holds the
/// init lock and no connection to the file is open.
fn quarantine_and_reopen(key: &Path, cause: &Error) -> Result<(PathBuf, Connection, JournalSetup)> {
    // The rows still readable are back in the rebuilt file by the time it
    // replaces the damaged one (same transaction); the copy is kept.
    let quarantined = quarantine::quarantine_in_place(key)?;
    bump(key, |c| c.quarantines += 1);
    events::quarantined(key, cause.sqlite_code(), &quarantined.aside);
    if let Some(report) = &quarantined.salvaged {
        events::salvaged(
            key,
            &quarantined.aside,
            report.rows,
            report.chunks,
            &report.incomplete,
        );
    }
    let (conn, setup) = open_connection(key)?;
    Ok((quarantined.aside, conn, setup))
}

/// Caches a freshly opened connection as the shared database for `key`.
fn register(key: &Path, conn: Connection, setup: JournalSetup) -> Arc<Database> {
    let db = Arc::new(Database {
        path: key.to_owned(),
        generation: fork::generation(),
        conn: Mutex::new(Some(conn)),
        journal_mode: Mutex::new(setup.journal_mode),
        // Read after the open, under the init lock: the file SQLite has open.
        identity: Mutex::new(file_id(key)),
        group: WriteGroup::new(),
    });
    lock(REGISTRY.get())
        .live
        .insert(key.to_owned(), Arc::downgrade(&db));
    db
}

/// One open attempt; on a transient I/O failure, one side-file recovery and
/// one retry.
fn open_with_recovery(key: &Path) -> Result<(Connection, JournalSetup)> {
    match open_connection(key) {
        Err(e) if e.class() == ErrorClass::TransientIo => {
            bump(key, |c| c.recoveries += 1);
            let report = recovery::recover_side_files(key);
            let outcome = match &report {
                Ok(r) => format!("{r:?}"),
                Err(failure) => format!("failed: {failure}"),
            };
            events::recovery(key, e.sqlite_code(), &outcome);
            report?;
            open_connection(key)
        }
        other => other,
    }
}

/// A bare read-write connection to `path` through the memtree VFS, with no
/// settings applied. Every memtree connection goes through the accounting /
/// fault-injection shim, so tests exercise the same I/O path users run.
pub fn open_through_vfs(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    crate::vfs::register().map_err(|code| {
        // Plain Error::sqlite: registering the VFS opens no file.
        Error::sqlite(
            "register the memtree VFS",
            path,
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        )
    })?;
    let conn = Connection::open_with_flags_and_vfs(path, flags, crate::vfs::VFS_NAME)
        .map_err(|e| crate::vfs::sqlite_or_refused("open", path, e))?;
    // Before the first read: the open's own checks read the schema, and
    // until now they waited under rusqlite's default `busy_timeout`, whose
    // 100 ms sleeps miss the instants between another process's back-to-back
    // commits (see crate::db::busy): an open during a busy ingest could end
    // in BusyError where every later statement would have got through.
    crate::db::busy::install(&conn)
        .map_err(|e| crate::vfs::sqlite_or_refused("set busy handler", path, e))?;
    schema::distrust_schema(&conn, path)?;
    Ok(conn)
}

/// Opens a connection through the memtree VFS, applies the journal setup and
/// the schema migrations. A WAL-era file first leaves WAL through a
/// connection that owns it (see [`recovery`]'s protocol), so memtree's
/// connection never needs the `-shm`; a file that must be refused is refused
/// from reads before anything writes.
fn open_connection(path: &Path) -> Result<(Connection, JournalSetup)> {
    // Files beside the database that earlier releases left are reported,
    // never merged on open: only `memtree recover --adopt` brings them in.
    salvage::keep_legacy_bases(path);
    for (file, note) in salvage::describe_unadopted(path) {
        events::stranded_left(path, &file, &note);
    }
    let left_wal = if recovery::is_wal_era(path) {
        recovery::recover_side_files(path)?.checkpointed_wal
    } else {
        false
    };
    let mut conn = open_through_vfs(path)?;
    bump(path, |c| c.connections_opened += 1);
    recovery::guard(&conn, true, path)?;
    recovery::refuse_unless_ours(&conn, path)?;
    recovery::guard(&conn, false, path)?;
    let mut setup = journal::configure(&conn, path)?;
    setup.migrated_from_wal |= left_wal;
    note_journal_setup(path, &setup);
    let report = schema::migrate_schema(&mut conn, path)?;
    if report.steps_applied > 0 {
        bump(path, |c| c.schema_inits += 1);
    }
    Ok((conn, setup))
}

/// Counts and reports what a journal setup on `path` did.
fn note_journal_setup(path: &Path, setup: &JournalSetup) {
    if setup.migrated_from_wal {
        bump(path, |c| c.wal_migrations += 1);
        events::wal_migrated(path);
    } else if setup.journal_mode != TARGET_JOURNAL_MODE {
        events::journal_switch_refused(path, &setup.journal_mode);
    }
}

/// On a cache hit whose earlier switch was refused, tries again.
fn retry_journal_switch(db: &Database) -> Result<Option<String>> {
    if db.journal_mode()? == TARGET_JOURNAL_MODE {
        return Ok(None);
    }
    let setup = db.with_conn(|conn| journal::configure(conn, &db.path))?;
    note_journal_setup(&db.path, &setup);
    let warning = journal::journal_warning(&setup.journal_mode, &db.path);
    *lock(&db.journal_mode) = setup.journal_mode;
    Ok(warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(db: &Database) -> Result<i64> {
        db.with_conn(|conn| {
            conn.query_row("SELECT count(*) FROM mem_tree_ingested_sources", [], |r| {
                r.get(0)
            })
            .map_err(db.err("count"))
        })
    }

    #[test]
    fn every_connection_distrusts_the_schema() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", Path::new("."), e))?;
        let db = open_database(&dir.path().join("chunks.db"))?.db;
        let trusted: i64 = db.with_conn(|conn| {
            conn.query_row("PRAGMA trusted_schema", [], |r| r.get(0))
                .map_err(db.err("read trusted_schema"))
        })?;
        assert_eq!(trusted, 0);
        Ok(())
    }

    #[test]
    fn a_moved_file_keeps_its_handles_and_new_opens_get_the_path() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", Path::new("."), e))?;
        let path = dir.path().join("chunks.db");
        let first = open_database(&path)?.db;
        first.with_conn(|conn| {
            conn.execute_batch(
                "INSERT INTO mem_tree_ingested_sources (source_kind, source_id, ingested_at_ms) \
                 VALUES ('chat', 's', 1)",
            )
            .map_err(first.err("insert"))
        })?;
        assert!(
            Arc::ptr_eq(&first, &open_database(&path)?.db),
            "same file: cached"
        );

        let moved = dir.path().join("moved.db");
        fs::rename(&path, &moved).map_err(|e| Error::io("rename", &path, e))?;
        let second = open_database(&path)?.db;
        assert!(!Arc::ptr_eq(&first, &second), "moved: a new connection");
        assert_eq!(count(&second)?, 0);
        // The old handle reads no more: its path names another file, whose
        // journal it must never take for its own.
        let read = count(&first);
        assert_eq!(
            read.err().and_then(|e| e.sqlite_code()),
            Some(rusqlite::ffi::SQLITE_READONLY_DBMOVED)
        );
        assert!(Arc::ptr_eq(&second, &open_database(&path)?.db));

        // The old handle finds no file of its own at the path: no quarantine.
        let cause = Error::invalid("test", "pretend corruption");
        match first.quarantine_and_rebuild(&cause) {
            Err(e) => assert_eq!(
                e.sqlite_code(),
                Some(rusqlite::ffi::SQLITE_READONLY_DBMOVED)
            ),
            Ok(aside) => panic!("quarantined the file at the path to {}", aside.display()),
        }
        assert_eq!(count(&second)?, 0, "the file at the path is untouched");
        Ok(())
    }
}
