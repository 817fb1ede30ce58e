//! One shared connection per database file: opening, the per-path init lock,
//! the journal setup (TRUNCATE + FULL) and the in-place WAL migration.
//!
//! The reference cached one connection per path behind a mutex, so WAL's one
//! benefit (concurrent readers) was unused while its side files (`-wal`,
//! `-shm`) caused most of its crash reports. memtree keeps the single cached
//! connection and runs it on the rollback journal instead.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};
use crate::schema::{self, MigrateError};

/// How long a statement waits on a lock held by another connection.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The journal mode memtree runs on.
pub const TARGET_JOURNAL_MODE: &str = "truncate";

/// The shared state of one open database file.
#[derive(Debug)]
pub struct Database {
    path: PathBuf,
    conn: Mutex<Connection>,
    journal_mode: Mutex<String>,
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

    /// The journal mode SQLite last reported for this connection.
    pub fn journal_mode(&self) -> String {
        lock(&self.journal_mode).clone()
    }

    /// Runs `f` with exclusive use of the connection.
    pub fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = lock(&self.conn);
        f(&mut conn)
    }

    /// Wraps a SQLite error with `context` and this database's path.
    pub fn err(&self, context: &str) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        let context = context.to_owned();
        move |e| Error::sqlite(&context, &self.path, e)
    }
}

/// What opening a database found, for the caller to report.
#[derive(Debug, Clone)]
pub struct OpenOutcome {
    /// The shared database.
    pub db: Arc<Database>,
    /// Set when the journal is not TRUNCATE: SQLite refused the switch.
    pub journal_warning: Option<String>,
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
}

#[derive(Default)]
struct Registry {
    live: HashMap<PathBuf, Weak<Database>>,
    init_locks: HashMap<PathBuf, Arc<Mutex<()>>>,
    counters: HashMap<PathBuf, OpenCounters>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

/// Counters for `path` (any spelling of it).
pub fn open_counters(path: &Path) -> Result<OpenCounters> {
    let key = canonical_db_path(path)?;
    Ok(lock(&REGISTRY)
        .counters
        .get(&key)
        .copied()
        .unwrap_or_default())
}

fn bump(key: &Path, f: impl FnOnce(&mut OpenCounters)) {
    f(lock(&REGISTRY).counters.entry(key.to_owned()).or_default());
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

/// Opens (or joins) the shared connection for `path`.
///
/// Concurrent first callers serialise on a per-path init lock, so the schema
/// is applied and the journal switched exactly once; later callers get the
/// cached connection.
pub fn open_database(path: &Path) -> Result<OpenOutcome> {
    let key = canonical_db_path(path)?;
    let init_lock = {
        let mut reg = lock(&REGISTRY);
        Arc::clone(reg.init_locks.entry(key.clone()).or_default())
    };
    let _init = lock(&init_lock);
    let cached = lock(&REGISTRY).live.get(&key).and_then(Weak::upgrade);
    if let Some(db) = cached {
        let journal_warning = retry_journal_switch(&db)?;
        return Ok(OpenOutcome {
            db,
            journal_warning,
        });
    }
    let (db, journal_warning) = open_fresh(&key)?;
    let db = Arc::new(db);
    lock(&REGISTRY).live.insert(key, Arc::downgrade(&db));
    Ok(OpenOutcome {
        db,
        journal_warning,
    })
}

fn open_fresh(path: &Path) -> Result<(Database, Option<String>)> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    // Every memtree connection goes through the accounting / fault-injection
    // shim, so tests exercise the same I/O path users run.
    crate::vfs::register().map_err(|code| {
        Error::sqlite(
            "register the memtree VFS",
            path,
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        )
    })?;
    let mut conn = Connection::open_with_flags_and_vfs(path, flags, crate::vfs::VFS_NAME)
        .map_err(|e| Error::sqlite("open", path, e))?;
    bump(path, |c| c.connections_opened += 1);
    let setup = configure(&conn, path)?;
    if setup.migrated_from_wal {
        bump(path, |c| c.wal_migrations += 1);
    }
    let report = schema::migrate(&mut conn).map_err(|e| match e {
        MigrateError::Sqlite(e) => Error::sqlite("schema migration", path, e),
        MigrateError::TooNew { found } => Error::SchemaTooNew {
            path: path.to_owned(),
            found,
            supported: schema::CURRENT_VERSION,
        },
    })?;
    if report.steps_applied > 0 {
        bump(path, |c| c.schema_inits += 1);
    }
    let warning = journal_warning(&setup.journal_mode, path);
    Ok((
        Database {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            journal_mode: Mutex::new(setup.journal_mode),
        },
        warning,
    ))
}

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
    let err = |ctx: &'static str| move |e| Error::sqlite(ctx, path, e);
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(err("set busy timeout"))?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA fullfsync = ON;")
        .map_err(err("set connection pragmas"))?;
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

fn query_journal_mode(conn: &Connection, sql: &str) -> rusqlite::Result<String> {
    conn.query_row(sql, [], |row| row.get::<_, String>(0))
        .map(|mode| mode.to_ascii_lowercase())
}

/// Copies every committed WAL frame into the database before the switch, so
/// the migration never depends on the `-wal` surviving.
fn checkpoint_wal(conn: &Connection, path: &Path) -> Result<()> {
    let (busy, log, done): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(|e| Error::sqlite("checkpoint the WAL before migration", path, e))?;
    // busy=1 means another connection blocked a full checkpoint; the switch
    // below then fails too and is reported as a journal warning. The -wal is
    // left in place and nothing is lost.
    let _ = (busy, log, done);
    Ok(())
}

/// Asks for TRUNCATE and returns the mode SQLite actually reports. A refusal
/// is not an error: the store still works (WAL with FULL is durable), but the
/// caller is told through a warning.
fn switch_to_truncate(conn: &Connection, before: &str, path: &Path) -> Result<String> {
    match query_journal_mode(conn, "PRAGMA journal_mode = TRUNCATE") {
        Ok(mode) => Ok(mode),
        // Leaving WAL needs an exclusive lock; another connection holding the
        // file makes SQLite answer BUSY/LOCKED instead of the old mode.
        Err(e) if crate::classify::classify_error(&e) == crate::classify::ErrorClass::Busy => {
            Ok(before.to_owned())
        }
        Err(e) => Err(Error::sqlite("switch journal mode", path, e)),
    }
}

fn journal_warning(mode: &str, path: &Path) -> Option<String> {
    (mode != TARGET_JOURNAL_MODE).then(|| {
        format!(
            "SQLite kept journal_mode={mode} instead of {TARGET_JOURNAL_MODE} for {} \
             (another connection holds the file); memtree retries on the next open",
            path.display()
        )
    })
}

/// On a cache hit whose earlier switch was refused, tries again.
fn retry_journal_switch(db: &Database) -> Result<Option<String>> {
    let current = db.journal_mode();
    if current == TARGET_JOURNAL_MODE {
        return Ok(None);
    }
    let setup = db.with_conn(|conn| configure(conn, &db.path))?;
    if setup.migrated_from_wal {
        bump(&db.path, |c| c.wal_migrations += 1);
    }
    let warning = journal_warning(&setup.journal_mode, &db.path);
    *lock(&db.journal_mode) = setup.journal_mode;
    Ok(warning)
}

/// Makes directory-entry changes (created, renamed or removed files) durable.
pub fn sync_parent_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync the database folder", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The side files SQLite may keep beside `path`, with their suffixes.
pub const SIDE_FILE_SUFFIXES: [&str; 3] = ["-journal", "-wal", "-shm"];

/// The side files that exist beside `path` right now.
pub fn existing_side_files(path: &Path) -> Vec<PathBuf> {
    SIDE_FILE_SUFFIXES
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .filter(|p| p.exists())
        .collect()
}
