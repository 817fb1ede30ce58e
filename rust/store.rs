//! The handle on one database file: opening (by file or by workspace),
//! closing, the read and write helpers every operation runs through, the
//! connection settings and the integrity check. The chunk operations are in
//! [`crate::chunks`], the job queue in [`crate::jobs`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use rusqlite::types::Value;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::busy::READ_BUSY_BUDGET;
use crate::classify::ErrorClass;
use crate::connection::{self, Database, OpenOutcome};
use crate::error::{Error, Result};

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
    pub fn open_file(path: &Path) -> Result<(Store, Option<String>)> {
        let OpenOutcome {
            db,
            journal_warning,
        } = connection::open_database(path)?;
        Ok((
            Store {
                path: db.path().to_owned(),
                db: RwLock::new(Some(db)),
            },
            journal_warning,
        ))
    }

    /// Opens `<workspace>/memory_tree/chunks.db`, creating the folders.
    pub fn open_workspace(workspace: &Path) -> Result<(Store, Option<String>)> {
        let dir = workspace.join("memory_tree");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("create the memory_tree folder", &dir, e))?;
        Store::open_file(&dir.join("chunks.db"))
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
    pub(crate) fn write_checked<T, E>(
        &self,
        context: &str,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<std::result::Result<T, E>>,
    ) -> Result<std::result::Result<T, E>> {
        let db = self.database()?;
        db.with_conn(|conn| {
            let run = |conn: &mut Connection| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let checked = f(&tx)?;
                if checked.is_ok() {
                    tx.commit()?;
                }
                // Otherwise dropping the transaction rolls back what `f` did.
                Ok(checked)
            };
            run(conn).map_err(db.err(context))
        })
    }

    /// The settings in force on the shared connection, as SQLite reports them:
    /// `journal_mode`, `synchronous` (2 = FULL), `fullfsync`, `foreign_keys`,
    /// `busy_timeout` (ms) and `user_version`. SQLite reports a busy timeout
    /// of 0 once a custom busy handler is installed, so `busy_timeout` is the
    /// limit of memtree's own handler ([`crate::busy::BUSY_TIMEOUT`]).
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
                    let ms = crate::busy::BUSY_TIMEOUT.as_millis();
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
    /// check, or CORRUPT / NOTADB while checking) is quarantined — moved aside
    /// with its side files, replaced by a fresh database for every handle —
    /// and reported as [`Error::Quarantined`].
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
