//! The columns of the row a statement has just stepped to, read straight
//! through SQLite's value API for a bulk read that rusqlite steps.
//!
//! rusqlite reads a column with four calls into SQLite (the column count,
//! the type, then the text and its length, each looking the column up again
//! under the connection's mutex); a tree walk reads 19 columns of 11,111
//! rows, and those calls were a third of its decoding time. Here each column
//! is one `sqlite3_column_value` and the value's own accessors. rusqlite
//! still prepares, caches, binds, steps and resets the statement: this only
//! reads what it stepped to.

use std::ffi::CStr;
use std::ptr::NonNull;

use rusqlite::ffi;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};

/// The running statement of one SQL text on one connection; see
/// [`RunningStatement::find`].
#[derive(Debug)]
pub(crate) struct RunningStatement {
    stmt: NonNull<ffi::sqlite3_stmt>,
    columns: usize,
}

impl RunningStatement {
    /// The statement of `conn` that is running `sql`: stepped to a row and
    /// not yet reset. Call it with the row of that statement at hand (after
    /// its first step); `None` if no statement, or more than one, is
    /// running that text, and the caller reads through rusqlite instead.
    pub(crate) fn find(conn: &Connection, sql: &str) -> Option<RunningStatement> {
        let mut found = None;
        // SAFETY: the connection is open and borrowed for the whole call,
        // and only this thread uses it (memtree holds it under its own
        // mutex); `sqlite3_next_stmt` walks the statements it owns, and
        // `sqlite3_sql` returns each one's text, alive while it is.
        unsafe {
            let db = conn.handle();
            let mut stmt = ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
            while let Some(candidate) = NonNull::new(stmt) {
                if ffi::sqlite3_stmt_busy(candidate.as_ptr()) != 0 {
                    let text = ffi::sqlite3_sql(candidate.as_ptr());
                    if !text.is_null() && CStr::from_ptr(text).to_bytes() == sql.as_bytes() {
                        if found.is_some() {
                            return None;
                        }
                        found = Some(candidate);
                    }
                }
                stmt = ffi::sqlite3_next_stmt(db, candidate.as_ptr());
            }
            let stmt = found?;
            let columns = usize::try_from(ffi::sqlite3_column_count(stmt.as_ptr())).ok()?;
            Some(RunningStatement { stmt, columns })
        }
    }

    /// Columns `first .. first + N` of the current row. `row` must be the
    /// row this statement stepped to: its borrow keeps the statement from
    /// stepping on, so the values (which point into SQLite's row) stay valid
    /// for `'r`. `None` when the columns run past the statement's.
    pub(crate) fn values<'r, const N: usize>(
        &self,
        _row: &'r Row<'_>,
        first: usize,
    ) -> Option<[ValueRef<'r>; N]> {
        if first + N > self.columns {
            return None;
        }
        let mut values = [ValueRef::Null; N];
        for (i, value) in values.iter_mut().enumerate() {
            let column = i32::try_from(first + i).ok()?;
            // SAFETY: the statement is stepped to a row (the caller holds
            // it) and `column` is within its columns. The value is SQLite's
            // own, read on the thread that owns the connection (the
            // "unprotected" value's rule is about other threads); its bytes
            // stay put until the next step or reset, which `row`'s borrow
            // rules out for `'r`.
            *value = unsafe { value_ref(ffi::sqlite3_column_value(self.stmt.as_ptr(), column)) };
        }
        Some(values)
    }
}

/// Packs the rows of one running statement: finds the statement once, at
/// its first row ([`RunningStatement::find`]), and reads each row's values
/// through it, or through rusqlite when it was not found. The one place a
/// bulk read (the walk, the chunk reads) turns rows into packed records.
pub(crate) struct RowPacker<'c> {
    conn: &'c Connection,
    sql: &'c str,
    running: Option<Option<RunningStatement>>,
    /// How many rows were read through the running statement rather than
    /// through rusqlite (what the tests check the fast path by).
    pub(crate) read_raw: usize,
}

impl<'c> RowPacker<'c> {
    /// A packer for the rows of `sql` run on `conn`.
    pub(crate) fn new(conn: &'c Connection, sql: &'c str) -> Self {
        RowPacker {
            conn,
            sql,
            running: None,
            read_raw: 0,
        }
    }

    /// `row`'s first `N` values packed by `pack`; a row `pack` refuses is
    /// handed to `decode`, the usual decoding, for its error.
    pub(crate) fn pack<T, const N: usize>(
        &mut self,
        row: &Row<'_>,
        pack: fn(&[ValueRef<'_>; N]) -> Option<T>,
        decode: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let (conn, sql) = (self.conn, self.sql);
        let running = self
            .running
            .get_or_insert_with(|| RunningStatement::find(conn, sql));
        let values = match running.as_ref().and_then(|r| r.values(row, 0)) {
            Some(values) => {
                self.read_raw += 1;
                values
            }
            None => row_values(row)?,
        };
        match pack(&values) {
            Some(packed) => Ok(packed),
            None => decode(row),
        }
    }
}

/// A row's first `N` values through rusqlite: the path when the running
/// statement is not found.
fn row_values<'r, const N: usize>(row: &'r Row<'_>) -> rusqlite::Result<[ValueRef<'r>; N]> {
    let mut values = [ValueRef::Null; N];
    for (i, value) in values.iter_mut().enumerate() {
        *value = row.get_ref(i)?;
    }
    Ok(values)
}

/// One value as rusqlite's [`ValueRef`] (text as its UTF-8 bytes,
/// unchecked, as rusqlite gives it).
///
/// # Safety
/// `value` is a live value of the current row; the result borrows its bytes.
unsafe fn value_ref<'r>(value: *mut ffi::sqlite3_value) -> ValueRef<'r> {
    // SAFETY: the caller's contract; the text and blob calls come before
    // the length, the order SQLite asks for (the text call may convert).
    unsafe {
        match ffi::sqlite3_value_type(value) {
            ffi::SQLITE_INTEGER => ValueRef::Integer(ffi::sqlite3_value_int64(value)),
            ffi::SQLITE_FLOAT => ValueRef::Real(ffi::sqlite3_value_double(value)),
            ffi::SQLITE_TEXT => ValueRef::Text(bytes(ffi::sqlite3_value_text(value), value)),
            ffi::SQLITE_BLOB => ValueRef::Blob(bytes(ffi::sqlite3_value_blob(value).cast(), value)),
            _ => ValueRef::Null,
        }
    }
}

/// The `sqlite3_value_bytes` bytes at `data` (empty for none).
///
/// # Safety
/// `data` is what the text or blob call just returned for `value`.
unsafe fn bytes<'r>(data: *const u8, value: *mut ffi::sqlite3_value) -> &'r [u8] {
    // SAFETY: the caller's contract: SQLite holds `len` bytes at `data`.
    unsafe {
        let len = usize::try_from(ffi::sqlite3_value_bytes(value)).unwrap_or(0);
        if data.is_null() || len == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(data, len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_row_rusqlite_stepped_to_as_rusqlite_does() -> rusqlite::Result<()> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(
            "CREATE TABLE t (a, b, c, d, e);
             INSERT INTO t VALUES (1, 'héllo', x'00ff', NULL, 2.5);
             INSERT INTO t VALUES (-7, '', x'', 'x', 0.0);",
        )?;
        let sql = "SELECT a, b, c, d, e FROM t ORDER BY rowid";
        // Another statement prepared, and one with the same text not
        // running: neither is taken for it.
        let _other = conn.prepare("SELECT 1")?;
        let mut idle = conn.prepare(sql)?;
        let mut stmt = conn.prepare(sql)?;
        let mut rows = stmt.query([])?;
        let mut seen = 0;
        while let Some(row) = rows.next()? {
            let running = RunningStatement::find(&conn, sql).expect("the running statement");
            let raw: [ValueRef<'_>; 5] = running.values(row, 0).expect("five columns");
            for (i, value) in raw.iter().enumerate() {
                assert_eq!(*value, row.get_ref(i)?);
            }
            let tail: [ValueRef<'_>; 2] = running.values(row, 3).expect("two columns");
            assert_eq!(tail, [row.get_ref(3)?, row.get_ref(4)?]);
            assert!(running.values::<2>(row, 4).is_none());
            seen += 1;
        }
        assert_eq!(seen, 2);
        drop(rows);
        // Reset: nothing runs that text now.
        assert!(RunningStatement::find(&conn, sql).is_none());
        // Two running with the same text: neither is guessed.
        let mut first = idle.query([])?;
        let _a = first.next()?;
        let mut second = stmt.query([])?;
        let _b = second.next()?;
        assert!(RunningStatement::find(&conn, sql).is_none());
        Ok(())
    }
}
