//! The batch write path's row source: `memtree_batch_rows(?1)`, an
//! eponymous-only table-valued virtual table over a borrowed chunk slice, so
//! a whole batch is written by ONE `INSERT … SELECT … FROM
//! memtree_batch_rows(?1)` (one statement, one step: SQLite opens the table's
//! and indexes' cursors once, where a statement per row opens and seeks them
//! per row).
//!
//! Protocol: [`insert_all`] registers the module on its connection the first
//! time it runs there ([`ensure_registered`]; in memory, no I/O), so the
//! connection layer needs to know nothing of the chunk table; then it prepares the statement,
//! binds the slice to `?1` with `sqlite3_bind_pointer` under a private type
//! tag, steps it to completion and finalizes it before returning. `xFilter`
//! reads the pointer back with `sqlite3_value_pointer`, which yields it only
//! under the same tag: SQL text cannot forge one, and a plain value (or
//! no argument bound this way) is an empty table, as with `carray`.
//!
//! Values are handed to SQLite without a copy (`SQLITE_STATIC`) when they
//! live in the chunk; the two encoded per row (tags' JSON, the embedding
//! blob) live in the cursor's scratch and are copied (`SQLITE_TRANSIENT`).
//!
//! SAFETY argument, in one place: every pointer the table holds (the
//! argument, the slice, values lent from its chunks) borrows from
//! [`insert_all`]'s arguments, which outlive the statement: it is finalized
//! (closing its cursors and dropping the binding) before [`insert_all`]
//! returns, on every path. The statement and handle are used only on the
//! calling thread (`Connection` is not `Sync`). rusqlite's `vtab` feature is
//! not used because it sets every text result `SQLITE_TRANSIENT`, a copy per
//! value, which this path exists to avoid.

use std::borrow::Borrow;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::LazyLock;

use rusqlite::types::ValueRef;
use rusqlite::{ffi, Connection};

use crate::chunks::record::Chunk;
use crate::chunks::row::{each_value, Encoded, CHUNK_COLUMNS, COLUMN_LIST, ON_CONFLICT};

/// The table-valued function a batch statement reads:
/// `memtree_batch_rows(?1)`, `?1` the batch bound by [`insert_all`].
pub const MODULE_NAME: &CStr = c"memtree_batch_rows";

/// The upsert of a whole batch in ONE statement, from the batch's virtual
/// table ([`crate::chunks::batch_rows`]) with [`UPSERT_SQL`](crate::chunks::row::UPSERT_SQL)'s conflict clause, so
/// a large batch ends exactly as the per-row upserts would: rows are
/// inserted in slice order, so an id repeated in the batch is inserted
/// whole by its first row and has its ingest fields replaced by each later
/// one. `WHERE true` is SQLite's documented way to let an `INSERT … SELECT`
/// take an `ON CONFLICT` clause (without it the parser reads `ON` as a join
/// constraint).
pub(crate) static UPSERT_ROWS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO mem_tree_chunks ({0}) SELECT {0} FROM {1}(?1) WHERE true {2}",
        *COLUMN_LIST,
        MODULE_NAME.to_str().expect("ASCII name"),
        *ON_CONFLICT
    )
});

/// The `sqlite3_bind_pointer` type tag of a [`RowsArg`]: SQLite hands the
/// pointer to `sqlite3_value_pointer` only under this exact tag, so no SQL
/// text and no other extension can forge one.
const POINTER_TAG: &CStr = c"memtree_batch_chunk_slice";

/// The argument the table receives: a borrowed slice of any
/// `C: Borrow<Chunk>` (owned chunks, references, `Prevalidated`), its
/// element type erased behind `at`, the accessor monomorphised for `C`.
#[derive(Clone, Copy)]
struct RowsArg {
    base: *const (),
    len: usize,
    /// The chunk of element `i < len` of the slice at `base`.
    at: unsafe fn(*const (), usize) -> *const Chunk,
}

/// [`RowsArg::at`] for a slice of `C`.
///
/// # Safety
/// `base` points to a live `[C]` of more than `i` elements.
unsafe fn chunk_at<C: Borrow<Chunk>>(base: *const (), i: usize) -> *const Chunk {
    // SAFETY: the caller's contract.
    let element = unsafe { &*base.cast::<C>().add(i) };
    ptr::from_ref(element.borrow())
}

/// An empty argument (a cursor before `xFilter`, or a forged argument).
const NO_ROWS: RowsArg = RowsArg {
    base: ptr::null(),
    len: 0,
    at: chunk_at::<Chunk>,
};

const N: usize = CHUNK_COLUMNS.len();
/// Index of the hidden `batch` column (after the chunk columns).
const BATCH: c_int = N as c_int;
/// The columns [`each_value`] encodes into its scratch, not the chunk.
const TAGS: usize = column_index("tags_json");
const EMBEDDING: usize = column_index("embedding");

const fn column_index(name: &str) -> usize {
    let mut i = 0;
    while i < N {
        if CHUNK_COLUMNS[i].len() == name.len() {
            let (a, b) = (CHUNK_COLUMNS[i].as_bytes(), name.as_bytes());
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("not a chunk column")
}

/// One value of the current row, its lifetime erased (see [`Cursor`]);
/// text and blobs as `(pointer, length, is_text)`.
#[derive(Clone, Copy)]
enum Raw {
    Null,
    Int(i64),
    Real(f64),
    /// Borrowed from the chunk: valid for the whole statement.
    Lent(*const u8, usize, bool),
    /// Encoded into the cursor's scratch: valid until the next row.
    Scratch(*const u8, usize, bool),
}

/// A scan of the bound slice: row `row` encoded in `values`, whose
/// pointers go into the bound slice (alive for the statement) or `scratch`
/// (rewritten by the next `load`).
#[repr(C)]
struct Cursor {
    /// First field: SQLite casts between the two.
    base: ffi::sqlite3_vtab_cursor,
    arg: RowsArg,
    row: usize,
    scratch: Encoded,
    values: [Raw; N],
}

impl Cursor {
    /// Encodes row `self.row` into `values`, if there is one.
    fn load(&mut self) -> c_int {
        if self.row >= self.arg.len {
            return ffi::SQLITE_OK;
        }
        // SAFETY: `arg` is the slice `insert_all` borrows for the whole
        // statement (see its SAFETY note), and `row < len`; a chunk
        // borrowed from an element lives as long as the element.
        let c = unsafe { &*(self.arg.at)(self.arg.base, self.row) };
        let scratch = &mut self.scratch;
        let values = &mut self.values;
        let done = each_value(c, scratch, |i, v| {
            let encoded = i == TAGS || i == EMBEDDING;
            values[i] = match v {
                ValueRef::Null => Raw::Null,
                ValueRef::Integer(n) => Raw::Int(n),
                ValueRef::Real(f) => Raw::Real(f),
                ValueRef::Text(t) if encoded => Raw::Scratch(t.as_ptr(), t.len(), true),
                ValueRef::Text(t) => Raw::Lent(t.as_ptr(), t.len(), true),
                ValueRef::Blob(b) if encoded => Raw::Scratch(b.as_ptr(), b.len(), false),
                ValueRef::Blob(b) => Raw::Lent(b.as_ptr(), b.len(), false),
            };
            Ok(())
        });
        match done {
            Ok(()) => ffi::SQLITE_OK,
            Err(_) => ffi::SQLITE_ERROR,
        }
    }
}

/// The client-data key marking a connection that has the module
/// (`sqlite3_set_clientdata`; the value is only a non-null marker).
pub(crate) const REGISTERED_KEY: &CStr = c"memtree_batch_rows_registered";

/// Registers the module on `conn` unless this connection has it already: the
/// chunk area brings its table to a connection where it is first used.
pub fn ensure_registered(conn: &Connection) -> rusqlite::Result<()> {
    // SAFETY: a valid handle, used on this thread only; the key is a
    // NUL-terminated static string.
    let marked = unsafe { ffi::sqlite3_get_clientdata(conn.handle(), REGISTERED_KEY.as_ptr()) };
    if !marked.is_null() {
        return Ok(());
    }
    register(conn)?;
    // SAFETY: as above; the marker is a static's address, never freed, so
    // no destructor.
    let rc = unsafe {
        ffi::sqlite3_set_clientdata(
            conn.handle(),
            REGISTERED_KEY.as_ptr(),
            REGISTERED_KEY.as_ptr().cast_mut().cast::<c_void>(),
            None,
        )
    };
    check(rc)
}

/// Registers the module on `conn` (eponymous-only: no `xCreate`);
/// registering again replaces it with itself.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    // SAFETY: `MODULE` is a static, so it outlives the connection; no
    // client data, so no destructor.
    let rc = unsafe {
        ffi::sqlite3_create_module_v2(
            conn.handle(),
            MODULE_NAME.as_ptr(),
            &MODULE,
            ptr::null_mut(),
            None,
        )
    };
    check(rc)
}

fn check(rc: c_int) -> rusqlite::Result<()> {
    if rc == ffi::SQLITE_OK || rc == ffi::SQLITE_DONE {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None))
    }
}

/// Finalizes the statement on every way out.
struct Finalize(*mut ffi::sqlite3_stmt);

impl Drop for Finalize {
    fn drop(&mut self) {
        // SAFETY: a statement this module prepared, finalized once.
        unsafe { ffi::sqlite3_finalize(self.0) };
    }
}

/// Runs `sql` (reading `memtree_batch_rows(?1)`) once with `?1` bound
/// to `chunks`, to completion. `chunks` may be owned chunks or anything
/// that borrows one; each row is read from the slice as SQLite steps.
pub fn insert_all<C: Borrow<Chunk>>(
    conn: &Connection,
    sql: &str,
    chunks: &[C],
) -> rusqlite::Result<()> {
    ensure_registered(conn)?;
    // SAFETY: the handle is used only in this call, on this thread
    // (`Connection` is not `Sync`), and the statement is finalized
    // before it returns.
    let db = unsafe { conn.handle() };
    // Declared before the statement, so it is dropped after it.
    let arg = RowsArg {
        base: chunks.as_ptr().cast(),
        len: chunks.len(),
        at: chunk_at::<C>,
    };
    let mut stmt = ptr::null_mut();
    // SAFETY: `sql` is valid for its length; `stmt` receives the
    // statement or NULL.
    let rc = unsafe {
        ffi::sqlite3_prepare_v3(
            db,
            sql.as_ptr().cast(),
            sql.len() as c_int,
            0,
            &mut stmt,
            ptr::null_mut(),
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(error(db, rc));
    }
    let stmt = Finalize(stmt);
    // SAFETY: the pointer (to `arg`, and through it to `chunks`) is
    // read only by this statement's `xFilter` during the step below;
    // `arg` and the `chunks` borrow outlive the step, and `Finalize`
    // finalizes the statement (closing its cursors and dropping the
    // binding) before `arg` is dropped and before this call returns.
    // The type tag is a static string, as `sqlite3_bind_pointer`
    // requires; no destructor.
    check(unsafe {
        ffi::sqlite3_bind_pointer(
            stmt.0,
            1,
            ptr::from_ref(&arg).cast_mut().cast(),
            POINTER_TAG.as_ptr(),
            None,
        )
    })?;
    // SAFETY: a prepared statement with its one parameter bound.
    let rc = unsafe { ffi::sqlite3_step(stmt.0) };
    if rc == ffi::SQLITE_DONE {
        Ok(())
    } else {
        Err(error(db, rc))
    }
}

/// The error for `rc` with the connection's message, copied at once.
#[cold]
fn error(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Error {
    // SAFETY: a live handle; SQLite owns the message until the next
    // call on the connection, and it is copied before that.
    let message = unsafe {
        let text = ffi::sqlite3_errmsg(db);
        (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), message)
}

static MODULE: ffi::sqlite3_module = ffi::sqlite3_module {
    iVersion: 1,
    xCreate: None,
    xConnect: Some(connect),
    xBestIndex: Some(best_index),
    xDisconnect: Some(disconnect),
    xDestroy: Some(disconnect),
    xOpen: Some(open),
    xClose: Some(close),
    xFilter: Some(filter),
    xNext: Some(next),
    xEof: Some(eof),
    xColumn: Some(column),
    xRowid: Some(rowid),
    xUpdate: None,
    xBegin: None,
    xSync: None,
    xCommit: None,
    xRollback: None,
    xFindFunction: None,
    xRename: None,
    xSavepoint: None,
    xRelease: None,
    xRollbackTo: None,
    xShadowName: None,
    xIntegrity: None,
};

unsafe extern "C" fn connect(
    db: *mut ffi::sqlite3,
    _aux: *mut c_void,
    _argc: c_int,
    _argv: *const *const c_char,
    vtab: *mut *mut ffi::sqlite3_vtab,
    _err: *mut *mut c_char,
) -> c_int {
    let schema = std::ffi::CString::new(format!(
        "CREATE TABLE x({}, batch HIDDEN)",
        CHUNK_COLUMNS.join(", ")
    ))
    .expect("no NUL in column names");
    // SAFETY: SQLite passes a live handle inside xConnect.
    let rc = unsafe { ffi::sqlite3_declare_vtab(db, schema.as_ptr()) };
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    // SAFETY: zeroed is the documented initial state; freed in
    // `disconnect`.
    let table: Box<ffi::sqlite3_vtab> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: SQLite gives an out pointer.
    unsafe { *vtab = Box::into_raw(table) };
    ffi::SQLITE_OK
}

unsafe extern "C" fn disconnect(vtab: *mut ffi::sqlite3_vtab) -> c_int {
    // SAFETY: allocated by `connect`, released once by SQLite.
    drop(unsafe { Box::from_raw(vtab) });
    ffi::SQLITE_OK
}

/// Accepts only a plan with `batch = ?` (the table-valued argument),
/// handed to `xFilter` as its one argument.
unsafe extern "C" fn best_index(
    _vtab: *mut ffi::sqlite3_vtab,
    info: *mut ffi::sqlite3_index_info,
) -> c_int {
    // SAFETY: SQLite passes a valid index info whose arrays hold
    // `nConstraint` entries.
    let info = unsafe { &mut *info };
    for i in 0..usize::try_from(info.nConstraint).unwrap_or(0) {
        // SAFETY: `i < nConstraint`.
        let c = unsafe { &*info.aConstraint.add(i) };
        if c.iColumn == BATCH && c.op == ffi::SQLITE_INDEX_CONSTRAINT_EQ as u8 && c.usable != 0 {
            // SAFETY: as above, same length.
            let usage = unsafe { &mut *info.aConstraintUsage.add(i) };
            usage.argvIndex = 1;
            usage.omit = 1;
            info.estimatedCost = 1.0;
            return ffi::SQLITE_OK;
        }
    }
    ffi::SQLITE_CONSTRAINT
}

unsafe extern "C" fn open(
    _vtab: *mut ffi::sqlite3_vtab,
    cursor: *mut *mut ffi::sqlite3_vtab_cursor,
) -> c_int {
    let c = Box::new(Cursor {
        // SAFETY: zeroed is the documented initial state.
        base: unsafe { std::mem::zeroed() },
        arg: NO_ROWS,
        row: 0,
        scratch: Encoded::default(),
        values: [Raw::Null; N],
    });
    // SAFETY: SQLite gives an out pointer; `Cursor` starts with its base.
    unsafe { *cursor = Box::into_raw(c).cast() };
    ffi::SQLITE_OK
}

unsafe extern "C" fn close(cursor: *mut ffi::sqlite3_vtab_cursor) -> c_int {
    // SAFETY: allocated by `open`, released once by SQLite.
    drop(unsafe { Box::from_raw(cursor.cast::<Cursor>()) });
    ffi::SQLITE_OK
}

unsafe extern "C" fn filter(
    cursor: *mut ffi::sqlite3_vtab_cursor,
    _idx_num: c_int,
    _idx_str: *const c_char,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) -> c_int {
    // SAFETY: a cursor from `open`.
    let cursor = unsafe { &mut *cursor.cast::<Cursor>() };
    // SAFETY: `best_index` asked for one argument. The pointer is NULL
    // unless it was bound with exactly `POINTER_TAG`, which only
    // `insert_all` does, with a `RowsArg` alive for the step.
    let arg = if argc == 1 {
        unsafe { ffi::sqlite3_value_pointer(*argv, POINTER_TAG.as_ptr()) }
            .cast::<RowsArg>()
            .cast_const()
    } else {
        ptr::null()
    };
    // A missing or forged argument is an empty table, as carray does.
    // SAFETY: see above.
    cursor.arg = unsafe { arg.as_ref() }.copied().unwrap_or(NO_ROWS);
    cursor.row = 0;
    cursor.load()
}

unsafe extern "C" fn next(cursor: *mut ffi::sqlite3_vtab_cursor) -> c_int {
    // SAFETY: a cursor from `open`.
    let cursor = unsafe { &mut *cursor.cast::<Cursor>() };
    cursor.row += 1;
    cursor.load()
}

unsafe extern "C" fn eof(cursor: *mut ffi::sqlite3_vtab_cursor) -> c_int {
    // SAFETY: a cursor from `open`.
    let cursor = unsafe { &*cursor.cast::<Cursor>() };
    c_int::from(cursor.row >= cursor.arg.len)
}

unsafe extern "C" fn column(
    cursor: *mut ffi::sqlite3_vtab_cursor,
    ctx: *mut ffi::sqlite3_context,
    i: c_int,
) -> c_int {
    // SAFETY: a cursor from `open`, not at EOF (SQLite's contract).
    let cursor = unsafe { &*cursor.cast::<Cursor>() };
    let value = usize::try_from(i)
        .ok()
        .and_then(|i| cursor.values.get(i))
        .copied()
        .unwrap_or(Raw::Null);
    // SAFETY: `ctx` is this call's result context. `Lent` points into
    // the chunk slice, alive until the statement is finalized, so
    // SQLite may keep it (`SQLITE_STATIC`); `Scratch` is overwritten on
    // the next row, so SQLite copies it (`SQLITE_TRANSIENT`). Lengths
    // are a chunk's, far below `u64::MAX`.
    unsafe {
        match value {
            Raw::Null => ffi::sqlite3_result_null(ctx),
            Raw::Int(n) => ffi::sqlite3_result_int64(ctx, n),
            Raw::Real(f) => ffi::sqlite3_result_double(ctx, f),
            Raw::Lent(p, n, text) => result(ctx, p, n, text, ffi::SQLITE_STATIC()),
            Raw::Scratch(p, n, text) => result(ctx, p, n, text, ffi::SQLITE_TRANSIENT()),
        }
    }
    ffi::SQLITE_OK
}

/// Sets a text (UTF-8) or blob result.
unsafe fn result(
    ctx: *mut ffi::sqlite3_context,
    p: *const u8,
    n: usize,
    text: bool,
    destructor: ffi::sqlite3_destructor_type,
) {
    // SAFETY: the caller's contract (see `column`).
    unsafe {
        if text {
            ffi::sqlite3_result_text64(ctx, p.cast(), n as u64, destructor, ffi::SQLITE_UTF8 as u8);
        } else {
            ffi::sqlite3_result_blob64(ctx, p.cast(), n as u64, destructor);
        }
    }
}

unsafe extern "C" fn rowid(cursor: *mut ffi::sqlite3_vtab_cursor, rowid: *mut i64) -> c_int {
    // SAFETY: a cursor from `open`; an out pointer.
    unsafe { *rowid = (*cursor.cast::<Cursor>()).row as i64 };
    ffi::SQLITE_OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::store::Store;

    #[test]
    fn without_its_pointer_it_is_an_empty_table() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        // A plain value (not a bound pointer with the tag) reads nothing.
        let n: i64 = conn
            .query_row("SELECT count(*) FROM memtree_batch_rows('x')", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 0);
        // Without the argument there is no plan at all.
        assert!(conn.prepare("SELECT * FROM memtree_batch_rows").is_err());
    }

    #[test]
    fn registering_twice_is_harmless_and_reads_every_row() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id TEXT, content TEXT, tags_json TEXT)")
            .unwrap();
        register(&conn).unwrap();
        register(&conn).unwrap();
        let chunks = crate::chunks::ops::tests::varied_chunks(3);
        let refs: Vec<&Chunk> = chunks.iter().collect();
        insert_all(
            &conn,
            "INSERT INTO t SELECT id, content, tags_json FROM memtree_batch_rows(?1)",
            &refs,
        )
        .unwrap();
        let ids: Vec<String> = conn
            .prepare("SELECT id FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(ids, ["c0000", "c0001", "c0002"]);
    }

    #[test]
    fn the_first_insert_registers_it_once_per_connection() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id TEXT)").unwrap();
        let probe = "SELECT count(*) FROM memtree_batch_rows(NULL)";
        assert!(
            conn.prepare(probe).is_err(),
            "not there before its first use"
        );
        let chunks = crate::chunks::ops::tests::varied_chunks(2);
        let sql = "INSERT INTO t SELECT id FROM memtree_batch_rows(?1)";
        insert_all(&conn, sql, &chunks).unwrap();
        insert_all(&conn, sql, &chunks).unwrap();
        let n: i64 = conn.query_row(probe, [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 4);
    }

    #[test]
    fn a_store_connection_has_it_after_a_large_upsert() -> crate::error::Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        let chunks =
            crate::chunks::ops::tests::varied_chunks(crate::chunks::ops::BATCH_STATEMENT_MIN_ROWS);
        assert_eq!(store.upsert_chunks(&chunks)?, chunks.len());
        let n: i64 = store.read("probe", |conn| {
            conn.query_row("SELECT count(*) FROM memtree_batch_rows(NULL)", [], |r| {
                r.get(0)
            })
        })?;
        assert_eq!(n, 0);
        Ok(())
    }
}
