//! The handle on one database file: opening (by file or by workspace),
//! closing, the read and write helpers every operation runs through, the
//! connection settings and the integrity check. The chunk operations are in
//! [`crate::chunks`], the job queue in [`crate::jobs`].
//!
//! Every write runs through [`Store::write_checked`], which makes concurrent
//! write calls share commits ([`crate::db::group_commit`]): each call is one
//! savepoint inside its group's transaction.

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use rusqlite::types::Value;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::db::busy::READ_BUSY_BUDGET;
use crate::db::connection::{self, Database, OpenOutcome};
use crate::db::group_commit::{Turn, Verdict};
use crate::db::write::SharedError;
use crate::error::classify::ErrorClass;
use crate::error::{Error, Result};
use crate::sys::path_guard::{self, Claim};

/// A write call's result inside the group protocol: a panic of the call's
/// closure is carried back to the caller's thread and resumed there.
enum Call<T> {
    Done(Result<T>),
    Panicked(Box<dyn Any + Send>),
}

/// One savepoint per call: the name is reused, since a group runs one call's
/// savepoint at a time. Each is a cached statement, prepared once per
/// connection (every turn runs two of them).
const SAVEPOINT: &str = "SAVEPOINT memtree_call";
const RELEASE: &str = "RELEASE memtree_call";
const ROLLBACK_TO: &str = "ROLLBACK TO memtree_call";
/// A group's COMMIT, cached like the savepoint statements: rusqlite's
/// `Transaction::commit` parses its COMMIT text again on every transaction.
/// (Its BEGIN IMMEDIATE is still parsed each time: a `Transaction` can only
/// be made by running it.)
const COMMIT: &str = "COMMIT";

/// Runs one of the savepoint statements above (or [`COMMIT`]) from the
/// statement cache.
fn savepoint_step(tx: &Transaction<'_>, sql: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(sql)?.execute([]).map(drop)
}

/// One call's turn in its group: `f` inside a savepoint on the group's open
/// transaction.
fn turn<T, E>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<std::result::Result<T, E>>,
    db: &Database,
    context: &str,
) -> Turn<Call<std::result::Result<T, E>>, SharedError> {
    if let Err(e) = savepoint_step(tx, SAVEPOINT) {
        let e = db.err(context)(e);
        // Nothing of this call ran; the others are unharmed unless SQLite
        // ended the transaction.
        return if tx.is_autocommit() {
            let shared = SharedError::copy_of(&e, context, db.path());
            Turn::Broken(Call::Done(Err(e)), shared)
        } else {
            Turn::Alone(Call::Done(Err(e)))
        };
    }
    match panic::catch_unwind(AssertUnwindSafe(|| f(tx))) {
        Ok(Ok(Ok(value))) => match savepoint_step(tx, RELEASE) {
            Ok(()) => Turn::Keep(Call::Done(Ok(Ok(value)))),
            Err(e) => {
                let e = db.err(context)(e);
                let shared = SharedError::copy_of(&e, context, db.path());
                Turn::Broken(Call::Done(Err(e)), shared)
            }
        },
        Ok(Ok(Err(refused))) => roll_back_alone(tx, db, context, Call::Done(Ok(Err(refused)))),
        Ok(Err(e)) => {
            let e = db.err(context)(e);
            roll_back_alone(tx, db, context, Call::Done(Err(e)))
        }
        Err(payload) => roll_back_alone(tx, db, context, Call::Panicked(payload)),
    }
}

/// Undoes one call's writes (to its savepoint), leaving the group's other
/// writes in place — unless SQLite already rolled the whole transaction back
/// (it may after an I/O error, `SQLITE_FULL` or `SQLITE_NOMEM`) or the
/// rollback itself fails: then the group's transaction is broken.
fn roll_back_alone<T>(
    tx: &Transaction<'_>,
    db: &Database,
    context: &str,
    result: Call<T>,
) -> Turn<Call<T>, SharedError> {
    let failure = if tx.is_autocommit() {
        match &result {
            Call::Done(Err(e)) => SharedError::copy_of(e, context, db.path()),
            _ => SharedError::Abandoned,
        }
    } else {
        match savepoint_step(tx, ROLLBACK_TO).and_then(|()| savepoint_step(tx, RELEASE)) {
            Ok(()) => return Turn::Alone(result),
            Err(e) => SharedError::copy_of(&db.err(context)(e), context, db.path()),
        }
    };
    if let (Call::Panicked(_), SharedError::Failed(_)) = (&result, &failure) {
        return Turn::Broken(result, SharedError::Abandoned);
    }
    Turn::Broken(result, failure)
}

/// A store just opened: the handle, the journal warning of its open, and
/// whether this open made the process's connection to the file (rather
/// than joining the one another handle holds).
#[derive(Debug)]
pub struct Opened {
    /// The handle.
    pub store: Store,
    /// What the open's journal setup has to say (a WAL it could not leave).
    pub journal_warning: Option<String>,
    /// This open made the process's connection to the file.
    pub made_connection: bool,
}

impl Opened {
    fn into_pair(self) -> (Store, Option<String>) {
        (self.store, self.journal_warning)
    }
}

/// A handle on one database file. Handles on the same file share one
/// connection; closing a handle releases it, and the connection closes with
/// the last handle.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    db: RwLock<Option<Arc<Database>>>,
}

impl Store {
    /// Opens (or joins) the store at an explicit database file (Python's
    /// `Store(path)`; [`Store::open_workspace`] is Python's `Store.open`).
    ///
    /// The handle alone: an application opens through
    /// [`crate::ops::open`], which also runs what an open owes the layers
    /// above this one.
    pub fn open_file(path: &Path) -> Result<(Store, Option<String>)> {
        Store::open_file_reporting(path).map(Opened::into_pair)
    }

    /// [`Store::open_file`], saying whether this open made the process's
    /// connection to the file.
    pub fn open_file_reporting(path: &Path) -> Result<Opened> {
        path_guard::check_names(path, false)?;
        Store::open_checked(path, Claim::Explicit)
    }

    /// Opens a path whose names [`path_guard`] has accepted.
    fn open_checked(path: &Path, claim: Claim) -> Result<Opened> {
        let OpenOutcome {
            db,
            journal_warning,
            opened,
        } = connection::open_database_as(path, claim)?;
        Ok(Opened {
            store: Store {
                path: db.path().to_owned(),
                db: RwLock::new(Some(db)),
            },
            journal_warning,
            made_connection: opened,
        })
    }

    /// Opens `<workspace>/memory_tree/chunks.db`, creating the folders (the
    /// handle alone, as [`Store::open_file`]).
    pub fn open_workspace(workspace: &Path) -> Result<(Store, Option<String>)> {
        Store::open_workspace_reporting(workspace).map(Opened::into_pair)
    }

    /// [`Store::open_workspace`], saying whether this open made the
    /// process's connection to the file.
    pub fn open_workspace_reporting(workspace: &Path) -> Result<Opened> {
        let dir = workspace.join("memory_tree");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("create the memory_tree folder", &dir, e))?;
        let db = dir.join("chunks.db");
        path_guard::check_names(&db, false)?;
        Store::open_checked(&db, Claim::Workspace)
    }

    /// The canonical database path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Releases this handle; later calls fail with [`Error::Closed`].
    pub fn close(&self) {
        let db = self.db.write().unwrap_or_else(|p| p.into_inner()).take();
        drop(db);
    }

    /// True once [`Store::close`] ran.
    pub fn is_closed(&self) -> bool {
        self.db.read().unwrap_or_else(|p| p.into_inner()).is_none()
    }

    pub(crate) fn database(&self) -> Result<Arc<Database>> {
        self.db
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(Error::Closed)
    }

    /// The journal mode SQLite reports for this database.
    pub fn journal_mode(&self) -> Result<String> {
        self.database()?.journal_mode()
    }

    /// Runs `f` on the connection, mapping SQLite errors with `context`.
    pub(crate) fn read<T>(
        &self,
        context: &str,
        f: impl Fn(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let db = self.database()?;
        let started = Instant::now();
        loop {
            // The connection mutex is released between attempts.
            match db.with_conn(|conn| f(conn).map_err(db.err(context))) {
                // A read changes nothing and holds nothing between tries, so
                // it keeps waiting for writers (each try waits up to the busy
                // handler's 5 s) where a write would give up.
                Err(e) if e.class() == ErrorClass::Busy && started.elapsed() < READ_BUSY_BUDGET => {
                }
                other => return other,
            }
        }
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction: all of it commits or
    /// none of it does.
    pub(crate) fn write<T>(
        &self,
        context: &str,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.write_checked(context, |tx| f(tx).map(Ok::<_, std::convert::Infallible>))
            .map(|checked| match checked {
                Ok(value) => value,
                Err(never) => match never {},
            })
    }

    /// [`Store::write`] for a change that can refuse itself: `f` returning
    /// `Ok(Err(e))` rolls the transaction back and hands `e` to the caller;
    /// only `Ok(Ok(_))` commits.
    ///
    /// Concurrent calls share commits ([`crate::db::group_commit`]): `f` runs on
    /// this thread inside a savepoint of its group's transaction; a call that
    /// fails or refuses rolls back alone, one that succeeds returns once the
    /// commit that made it durable returned, and a failed commit fails every
    /// call it carried with its error.
    pub(crate) fn write_checked<T, E>(
        &self,
        context: &str,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<std::result::Result<T, E>>,
    ) -> Result<std::result::Result<T, E>> {
        let db = self.database()?;
        // A leader whose BEGIN or COMMIT fails gets that very error back (a
        // lone writer sees exactly what it saw before group commit); the
        // calls it carried get copies with their own context.
        let original: Cell<Option<Error>> = Cell::new(None);
        let call = db.write_group()?.submit(
            |drive| {
                db.with_conn(|conn| {
                    let syncs_before = crate::vfs::io_stats(db.path()).syncs_total();
                    let tx = conn
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .map_err(db.err(context))?;
                    match drive(&tx) {
                        Verdict::Commit => {
                            // A COMMIT that fails leaves the transaction
                            // open; the `?` then drops `tx`, which rolls it
                            // back (as `Transaction::commit` would): nothing
                            // of the group is durable. After a successful
                            // COMMIT, dropping `tx` finds autocommit on and
                            // does nothing.
                            savepoint_step(&tx, COMMIT).map_err(db.err(context))?;
                            drop(tx);
                            let syncs = crate::vfs::io_stats(db.path()).syncs_total();
                            Ok(syncs.saturating_sub(syncs_before))
                        }
                        // Dropping `tx` rolls back what is left of it.
                        Verdict::RollBack => Ok(0),
                    }
                })
                .map_err(|e| {
                    let shared = SharedError::copy_of(&e, context, db.path());
                    original.set(Some(e));
                    shared
                })
            },
            |tx| turn(tx, f, &db, context),
            |shared| {
                let e = original
                    .take()
                    .unwrap_or_else(|| shared.for_call(context, db.path()));
                Call::Done(Err(e))
            },
        );
        match call {
            Call::Done(result) => result,
            Call::Panicked(payload) => panic::resume_unwind(payload),
        }
    }

    /// The settings in force on the shared connection, as SQLite reports them:
    /// `journal_mode`, `synchronous` (2 = FULL), `fullfsync`, `foreign_keys`,
    /// `busy_timeout` (ms) and `user_version`. SQLite reports a busy timeout
    /// of 0 once a custom busy handler is installed, so `busy_timeout` is the
    /// limit of memtree's own handler ([`crate::db::busy::timeout`]: 5 s
    /// unless a test set another).
    pub fn connection_settings(&self) -> Result<Vec<(String, String)>> {
        self.read("connection_settings", |conn| {
            [
                "journal_mode",
                "synchronous",
                "fullfsync",
                "foreign_keys",
                "busy_timeout",
                "user_version",
            ]
            .into_iter()
            .map(|name| {
                if name == "busy_timeout" {
                    let ms = crate::db::busy::timeout().as_millis();
                    return Ok((name.to_owned(), ms.to_string()));
                }
                let value: rusqlite::types::Value =
                    conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))?;
                let text = match value {
                    Value::Integer(i) => i.to_string(),
                    Value::Text(t) => t,
                    other => format!("{other:?}"),
                };
                Ok((name.to_owned(), text))
            })
            .collect()
        })
    }

    /// Runs `PRAGMA integrity_check` when `full`, else `PRAGMA quick_check`
    /// (the polarity of Python's `check(full=...)`); returns `["ok"]` for a healthy file. A corrupt file (a failed
    /// check, or CORRUPT / NOTADB while checking) is quarantined — copied
    /// aside and rebuilt in place with every row still readable (see
    /// [`crate::recovery::quarantine`]) — and reported as [`Error::Quarantined`].
    pub fn check(&self, full: bool) -> Result<Vec<String>> {
        let pragma = if full {
            "integrity_check"
        } else {
            "quick_check"
        };
        let db = self.database()?;
        let outcome = db.with_conn(|conn| {
            let run = || {
                let mut stmt = conn.prepare(&format!("PRAGMA {pragma}"))?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                rows.collect::<rusqlite::Result<Vec<String>>>()
            };
            run().map_err(db.err("check"))
        });
        let failure = match outcome {
            Ok(lines) if lines.len() == 1 && lines[0] == "ok" => return Ok(lines),
            // Plain Error::sqlite: the check's verdict, CORRUPT, a code memtree chose.
            Ok(lines) => Error::sqlite(
                pragma,
                db.path(),
                rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                    Some(lines.join("; ")),
                ),
            ),
            Err(e) if e.class() == ErrorClass::Corrupt => e,
            Err(e) => return Err(e),
        };
        let quarantined = db.quarantine_and_rebuild(&failure)?;
        Err(Error::Quarantined {
            path: db.path().to_owned(),
            quarantined,
            source: Box::new(failure),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread;
    use std::time::Duration;

    use crate::vfs::{self, Fault, VfsMethod};

    fn temp_store() -> Result<(tempfile::TempDir, Store)> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", Path::new("."), e))?;
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        Ok((dir, store))
    }

    fn insert(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<usize> {
        tx.execute(
            "INSERT INTO mem_tree_ingested_sources (source_kind, source_id, ingested_at_ms) \
             VALUES ('chat', ?1, 1)",
            [id],
        )
    }

    fn sources(store: &Store) -> Result<Vec<String>> {
        store.read("sources", |conn| {
            let mut stmt =
                conn.prepare("SELECT source_id FROM mem_tree_ingested_sources ORDER BY source_id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// Calls waiting for the active leader of `store`'s database.
    fn queued(store: &Store) -> usize {
        store
            .database()
            .and_then(|db| Ok(db.write_group()?.queued()))
            .unwrap_or(0)
    }

    fn wait_for(mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready() {
            assert!(Instant::now() < deadline, "timed out waiting");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_failing_call_inside_a_group_does_not_take_the_others_down() -> Result<()> {
        let (_dir, store) = temp_store()?;
        let leading = AtomicBool::new(false);
        let (a, b, c) = thread::scope(|s| {
            // `a` leads and holds its turn until `b` and `c` queue behind it,
            // so all three are in one group.
            let a = s.spawn(|| {
                store.write("a", |tx| {
                    insert(tx, "a1")?;
                    leading.store(true, Ordering::SeqCst);
                    wait_for(|| queued(&store) >= 2);
                    insert(tx, "a2")
                })
            });
            wait_for(|| leading.load(Ordering::SeqCst));
            // `b` writes a row, then fails on a duplicate key: its savepoint
            // must take its first row back with it.
            let b = s.spawn(|| {
                store.write("b", |tx| {
                    insert(tx, "b1")?;
                    insert(tx, "b1")
                })
            });
            wait_for(|| queued(&store) >= 1);
            let c = s.spawn(|| store.write("c", |tx| insert(tx, "c1")));
            (a.join(), b.join(), c.join())
        });
        let (a, b, c) = (
            a.expect("a did not panic"),
            b.expect("b did not panic"),
            c.expect("c did not panic"),
        );
        assert!(a.is_ok() && c.is_ok(), "{a:?} {c:?}");
        let b = b.expect_err("b's duplicate key fails b");
        assert_eq!(b.class(), ErrorClass::Constraint);
        assert_eq!(
            b.sqlite_code(),
            Some(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
        );
        assert_eq!(sources(&store)?, ["a1", "a2", "c1"]);
        let stats = store.database()?.write_group()?.stats();
        assert_eq!(
            (stats.commits, stats.committed_calls, stats.largest_group),
            (1, 2, 2)
        );
        assert_eq!(stats.rolled_back_calls, 1);
        Ok(())
    }

    #[test]
    fn a_lone_writer_whose_begin_fails_gets_that_very_error() -> Result<()> {
        let (_dir, store) = temp_store()?;
        let path = store.path().to_owned();
        // BEGIN IMMEDIATE takes the RESERVED lock first: fail that once.
        vfs::inject_fault(
            &path,
            Fault {
                method: VfsMethod::Lock,
                nth: 1,
                code: rusqlite::ffi::SQLITE_IOERR_LOCK,
                persistent: false,
                role: None,
            },
        );
        let failed = store.write("lone", |tx| insert(tx, "x"));
        assert_eq!(vfs::clear_fault(&path), 1);
        match failed {
            Err(Error::Sqlite { context, .. }) => assert_eq!(context, "lone"),
            other => panic!("expected the BEGIN's own error, got {other:?}"),
        }
        store.write("lone", |tx| insert(tx, "y"))?;
        assert_eq!(sources(&store)?, ["y"]);
        Ok(())
    }

    #[test]
    fn a_panicking_call_rolls_back_alone_and_unwinds_its_own_thread() -> Result<()> {
        let (_dir, store) = temp_store()?;
        let leading = AtomicBool::new(false);
        let (a, b) = thread::scope(|s| {
            let a = s.spawn(|| {
                store.write("a", |tx| {
                    leading.store(true, Ordering::SeqCst);
                    wait_for(|| queued(&store) >= 1);
                    insert(tx, "a1")
                })
            });
            wait_for(|| leading.load(Ordering::SeqCst));
            let b = s.spawn(|| {
                store.write("b", |tx| -> rusqlite::Result<()> {
                    insert(tx, "b1")?;
                    panic!("b's closure panics after writing")
                })
            });
            (a.join(), b.join())
        });
        assert!(matches!(a, Ok(Ok(_))), "{a:?}");
        assert!(b.is_err(), "b's panic reaches b's own thread");
        assert_eq!(sources(&store)?, ["a1"]);
        Ok(())
    }

    #[test]
    fn readers_wait_for_the_group_and_never_see_a_write_that_rolls_back() -> Result<()> {
        let (_dir, store) = temp_store()?;
        let path = store.path().to_owned();
        let leading = AtomicBool::new(false);
        let b_wrote = AtomicBool::new(false);
        let (a, b, seen) = thread::scope(|s| {
            let a = s.spawn(|| {
                store.write("a", |tx| {
                    insert(tx, "a1")?;
                    leading.store(true, Ordering::SeqCst);
                    wait_for(|| queued(&store) >= 1);
                    Ok(())
                })
            });
            wait_for(|| leading.load(Ordering::SeqCst));
            let b = s.spawn(|| {
                store.write("b", |tx| {
                    insert(tx, "b1")?;
                    // The group's commit will fail at its first sync: both
                    // rows are uncommitted now and will never be durable.
                    vfs::inject_fault(
                        &path,
                        Fault {
                            method: VfsMethod::Sync,
                            nth: 1,
                            code: rusqlite::ffi::SQLITE_IOERR_FSYNC,
                            persistent: false,
                            role: None,
                        },
                    );
                    b_wrote.store(true, Ordering::SeqCst);
                    // Time for a reader to (wrongly) get in between turns.
                    thread::sleep(Duration::from_millis(200));
                    Ok(())
                })
            });
            let reader = s.spawn(|| {
                wait_for(|| b_wrote.load(Ordering::SeqCst));
                sources(&store)
            });
            (a.join(), b.join(), reader.join())
        });
        let seen = seen.expect("reader did not panic")?;
        assert!(seen.is_empty(), "a reader saw uncommitted rows: {seen:?}");
        assert_eq!(vfs::faults_fired(&path), 1, "the commit's sync failed");
        for call in [a, b] {
            let e = call
                .expect("no panic")
                .expect_err("a failed commit fails every call it carried");
            assert_eq!(e.sqlite_code(), Some(rusqlite::ffi::SQLITE_IOERR_FSYNC));
        }
        vfs::clear_fault(&path);
        assert!(sources(&store)?.is_empty());
        store.write("after", |tx| insert(tx, "z1"))?;
        assert_eq!(sources(&store)?, ["z1"]);
        let stats = store.database()?.write_group()?.stats();
        assert_eq!((stats.failed_groups, stats.commits), (1, 1));
        Ok(())
    }

    /// What another process sees when it asks for the write lock at once:
    /// `"locked"` while a connection of this process holds it.
    fn other_process_tries_to_write(path: &Path) -> std::io::Result<String> {
        let probe = "import sqlite3, sys\n\
                     c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n\
                     try:\n    c.execute('BEGIN IMMEDIATE'); print('acquired')\n\
                     except sqlite3.OperationalError: print('locked')\n";
        let out = std::process::Command::new("python3")
            .args(["-c", probe])
            .arg(path)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    #[cfg(unix)]
    #[test]
    fn opening_an_open_store_again_keeps_its_locks(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        // Closing any descriptor of a file drops every POSIX lock the process
        // holds on it: the header is read only before the first connection.
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("chunks.db");
        let (store, _) = Store::open_file(&path)?;
        let seen = store.write("hold the write lock", |tx| {
            // BEGIN IMMEDIATE holds the RESERVED lock and nothing is in the
            // journal yet: nothing else would keep a header read away.
            let again = Store::open_file(&path);
            let after_open = other_process_tries_to_write(&path);
            // The harness sees a dropped lock: a header read drops it.
            let header = crate::sys::path_guard::read_header(&path);
            let after_read = other_process_tries_to_write(&path);
            tx.execute(
                "INSERT INTO mem_tree_ingested_sources (source_kind, source_id, ingested_at_ms) \
                 VALUES ('chat', 's', 1)",
                [],
            )?;
            Ok((
                again.is_ok(),
                after_open.ok(),
                header.is_ok(),
                after_read.ok(),
            ))
        })?;
        assert_eq!(
            seen,
            (
                true,
                Some("locked".to_owned()),
                true,
                Some("acquired".to_owned())
            )
        );
        Ok(())
    }
}
