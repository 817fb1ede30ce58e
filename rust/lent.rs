//! A prepared statement that lends its text and blob values to SQLite
//! (`SQLITE_STATIC`) instead of having them copied, for the ingest loop.
//!
//! rusqlite binds every text and blob with `SQLITE_TRANSIENT`: SQLite
//! mallocs a copy of each value at bind time, copies it once more into the
//! record at step time, and frees the first copy on the next bind. A chunk
//! has eight text columns (~500 bytes of content among them), so a 10,000-row
//! ingest paid 80,000 mallocs, copies and frees that `INSERT … SELECT` does
//! not. The chunks outlive the step, so lending them is enough.
//!
//! rusqlite does not expose a `Statement`'s `sqlite3_stmt`, so this prepares
//! its own on the connection's handle and finalizes it when dropped. The one
//! way to run it is [`LentStatement::execute`], which binds one row, steps,
//! resets and clears the bindings before it returns: SQLite holds a lent
//! pointer only while the borrow it came from is alive.

use std::ffi::{c_int, c_void, CStr};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use rusqlite::types::ValueRef;
use rusqlite::{ffi, Connection};

/// A statement prepared on `'conn`'s handle whose text and blob parameters
/// are lent, never copied, by SQLite.
pub(crate) struct LentStatement<'conn> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: *mut ffi::sqlite3,
    /// The statement must be finalized before its connection closes: the
    /// borrow keeps the connection open (and on this thread) meanwhile.
    _conn: PhantomData<&'conn Connection>,
}

/// Binds one row's values for [`LentStatement::execute`]; `'v` is a lifetime
/// of the `execute` call, so every value lent through it outlives the step.
pub(crate) struct Binder<'v> {
    stmt: *mut ffi::sqlite3_stmt,
    db: *mut ffi::sqlite3,
    _values: PhantomData<fn(ValueRef<'v>)>,
}

impl<'conn> LentStatement<'conn> {
    /// Prepares `sql` (one statement) on `conn`.
    pub(crate) fn prepare(conn: &'conn Connection, sql: &str) -> rusqlite::Result<Self> {
        // SAFETY: the handle is used only through this value, which borrows
        // `conn` for its whole life, and `Connection` is not `Sync`, so no
        // other thread uses the handle meanwhile.
        let db = unsafe { conn.handle() };
        let len = c_int::try_from(sql.len()).map_err(|_| {
            rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_TOOBIG), None)
        })?;
        let mut stmt = ptr::null_mut();
        // SAFETY: `sql` is valid for `len` bytes (no NUL needed with an
        // explicit length); `stmt` receives the new statement or NULL.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(db, sql.as_ptr().cast(), len, 0, &mut stmt, ptr::null_mut())
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
        let stmt = NonNull::new(stmt).ok_or_else(|| {
            rusqlite::Error::SqliteFailure(
                ffi::Error::new(ffi::SQLITE_MISUSE),
                Some("no statement in the SQL".to_owned()),
            )
        })?;
        Ok(LentStatement {
            stmt,
            db,
            _conn: PhantomData,
        })
    }

    /// Binds one row through `bind`, runs the statement to completion and
    /// returns the rows it changed. Parameters `bind` does not set are NULL.
    pub(crate) fn execute<'v>(
        &mut self,
        bind: impl FnOnce(&mut Binder<'v>) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<usize> {
        // Resets and clears the bindings on every way out (an error from
        // `bind`, a panic): the lent pointers must not outlive `'v`.
        let row = Row(self.stmt.as_ptr());
        bind(&mut Binder {
            stmt: row.0,
            db: self.db,
            _values: PhantomData,
        })?;
        // SAFETY: a prepared statement of this connection, every lent value
        // alive until `row` is dropped at the end of this call.
        let stepped = unsafe { ffi::sqlite3_step(row.0) };
        // The step's error is what sqlite3_reset reports again (v2+
        // statements); reset first, as rusqlite does, so the statement
        // releases its locks before the error travels.
        let reset = unsafe { ffi::sqlite3_reset(row.0) };
        match stepped {
            ffi::SQLITE_DONE if reset == ffi::SQLITE_OK => {
                // SAFETY: the connection handle, alive for 'conn.
                let changes = unsafe { ffi::sqlite3_changes64(self.db) };
                Ok(usize::try_from(changes).unwrap_or(0))
            }
            ffi::SQLITE_DONE => Err(error(self.db, reset)),
            ffi::SQLITE_ROW => Err(rusqlite::Error::ExecuteReturnedResults),
            code => Err(error(self.db, code)),
        }
    }
}

impl Drop for LentStatement<'_> {
    fn drop(&mut self) {
        // SAFETY: prepared by this value and finalized once, here; its
        // connection is still open ('conn). Finalize's code repeats the last
        // step's error, which `execute` already reported.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// Resets the statement and clears its bindings when dropped.
struct Row(*mut ffi::sqlite3_stmt);

impl Drop for Row {
    fn drop(&mut self) {
        // SAFETY: a live statement; after sqlite3_clear_bindings it holds no
        // lent pointer. Reset is harmless when `execute` already reset it.
        unsafe {
            ffi::sqlite3_reset(self.0);
            ffi::sqlite3_clear_bindings(self.0);
        }
    }
}

impl<'v> Binder<'v> {
    /// Binds `value` to the 1-based parameter `index`; text and blobs are
    /// lent for the rest of the `execute` call.
    pub(crate) fn put(&mut self, index: usize, value: ValueRef<'v>) -> rusqlite::Result<()> {
        let at = c_int::try_from(index).map_err(|_| {
            rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_RANGE), None)
        })?;
        // SAFETY: a live statement of this connection. A lent pointer stays
        // valid for 'v, which lasts until `execute` returns, and `execute`
        // clears every binding before it does. An empty value is bound from
        // a static empty string (a zero-length blob as a zeroblob): SQLite
        // must never see the dangling pointer of an empty slice.
        let rc = unsafe {
            match value {
                ValueRef::Null => ffi::sqlite3_bind_null(self.stmt, at),
                ValueRef::Integer(i) => ffi::sqlite3_bind_int64(self.stmt, at, i),
                ValueRef::Real(r) => ffi::sqlite3_bind_double(self.stmt, at, r),
                ValueRef::Text(t) => ffi::sqlite3_bind_text64(
                    self.stmt,
                    at,
                    if t.is_empty() {
                        c"".as_ptr()
                    } else {
                        t.as_ptr().cast()
                    },
                    t.len() as ffi::sqlite3_uint64,
                    ffi::SQLITE_STATIC(),
                    ffi::SQLITE_UTF8 as u8,
                ),
                ValueRef::Blob([]) => ffi::sqlite3_bind_zeroblob(self.stmt, at, 0),
                ValueRef::Blob(b) => ffi::sqlite3_bind_blob64(
                    self.stmt,
                    at,
                    b.as_ptr().cast::<c_void>(),
                    b.len() as ffi::sqlite3_uint64,
                    ffi::SQLITE_STATIC(),
                ),
            }
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(error(self.db, rc))
        }
    }
}

/// The error for result code `code`, with the connection's message when it
/// is about that code (as rusqlite builds it).
#[cold]
fn error(db: *mut ffi::sqlite3, code: c_int) -> rusqlite::Error {
    // SAFETY: a live connection handle; SQLite owns both message strings,
    // which are copied before any other call on the connection.
    let message = unsafe {
        let text = if ffi::sqlite3_errcode(db) == code {
            ffi::sqlite3_errmsg(db)
        } else {
            ffi::sqlite3_errstr(code)
        };
        (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lent_values_are_stored_and_released_each_row() -> rusqlite::Result<()> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch("CREATE TABLE t (a TEXT, b BLOB, c INTEGER, d REAL, e TEXT UNIQUE)")?;
        let mut insert =
            LentStatement::prepare(&conn, "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for (i, text) in ["héllo", "", "x\0y"].iter().enumerate() {
            // A fresh buffer per row, dropped right after its row: SQLite
            // must have stored its own copy in the record.
            let owned = text.to_string();
            let blob = owned.as_bytes().to_vec();
            let key = format!("k{i}");
            let changed = insert.execute(|b| {
                b.put(1, ValueRef::Text(owned.as_bytes()))?;
                b.put(2, ValueRef::Blob(&blob))?;
                b.put(3, ValueRef::Integer(i as i64))?;
                b.put(4, ValueRef::Real(0.5))?;
                b.put(5, ValueRef::Text(key.as_bytes()))
            })?;
            assert_eq!(changed, 1);
        }
        // A row that binds nothing after an earlier row: the bindings were
        // cleared, so every column is NULL.
        insert.execute(|_| Ok(()))?;
        // A constraint failure comes back with its extended code and message.
        let err = insert
            .execute(|b| b.put(5, ValueRef::Text(b"k0")))
            .unwrap_err();
        assert_eq!(
            err.sqlite_error().map(|e| e.extended_code),
            Some(ffi::SQLITE_CONSTRAINT_UNIQUE)
        );
        assert!(
            err.to_string().contains("UNIQUE constraint failed: t.e"),
            "{err}"
        );
        // A bad parameter index fails at bind time.
        assert!(insert.execute(|b| b.put(9, ValueRef::Null)).is_err());
        drop(insert);
        type Stored = (Option<String>, Option<Vec<u8>>, Option<i64>);
        let rows: Vec<Stored> = conn
            .prepare("SELECT a, b, c FROM t ORDER BY rowid")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let text = |s: &str| (Some(s.to_owned()), Some(s.as_bytes().to_vec()));
        let want = [(text("héllo"), 0), (text(""), 1), (text("x\0y"), 2)];
        assert_eq!(rows.len(), 4);
        for ((a, b, c), ((wa, wb), wc)) in rows.iter().zip(want) {
            assert_eq!((a, b, *c), (&wa, &wb, Some(wc)));
        }
        assert_eq!(rows[3], (None, None, None));
        Ok(())
    }
}
