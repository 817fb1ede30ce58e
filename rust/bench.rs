//! The measured commit loop behind `memtree bench`: memtree's own schema and
//! write path under any journal mode / synchronous level, with exact I/O
//! accounting from the VFS shim.
//!
//! The store itself always runs TRUNCATE + FULL, so comparing modes needs a
//! connection of its own: opened through the `memtree` VFS (so every `xSync`
//! and written byte is counted per commit), migrated with
//! [`crate::schema::migrate`], and written with the store's own upsert
//! statement. Rows come from [`bench_chunk`], a deterministic generator that
//! the pure-SQL baseline ([`insert_select`]) reproduces column for column.
//! [`insert_vtab`] inserts the same rows with one statement per batch, from
//! a virtual table over the chunk slice (is one statement per row the cost?).

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use crate::chunk::{Chunk, SourceKind, DEFAULT_LIFECYCLE_STATUS};
use crate::chunks::CHUNK_COLUMNS;
use crate::connection::{self, canonical_db_path};
use crate::error::{Error, Result};
use crate::journal;
use crate::vfs::{self, IoStats};

/// Journal modes the benchmark accepts (the rollback modes and WAL).
pub const JOURNAL_MODES: [&str; 4] = ["wal", "truncate", "delete", "persist"];

/// `synchronous` levels the benchmark accepts.
pub const SYNC_LEVELS: [&str; 4] = ["off", "normal", "full", "extra"];

/// `timestamp_ms` of row 0 (2026-01-01T00:00:00Z); row `i` is `i` seconds later.
pub const BASE_TIME_MS: i64 = 1_767_225_600_000;

/// Filler that brings every generated chunk's content to [`CONTENT_BYTES`].
const FILLER: &str = "Alice and Bob compared the rollback journal with the write-ahead log \
     and decided that one cached connection per file never used concurrent readers, \
     so durability per commit matters more than reader concurrency. The notes cover \
     antivirus handles on Windows, sandboxed shared memory on macOS, checkpoint \
     truncation failures, and what synchronous FULL costs on a laptop disk. Action \
     items: measure commit latency per batch size, record sync calls per commit, \
     and publish the table so users can choose a mode. End of meeting notes....";

/// Content length of every generated chunk, in bytes.
pub const CONTENT_BYTES: usize = 500;

/// Length of the `"chunk NNNNNNNN "` prefix before the filler.
const PREFIX_BYTES: usize = 15;

/// The filler as stored (cut so prefix + filler is [`CONTENT_BYTES`]).
fn filler() -> &'static str {
    &FILLER[..CONTENT_BYTES - PREFIX_BYTES]
}

/// Generated chunk number `i`: ~500 bytes of content, three source kinds,
/// 100 chunks per source, 8 owners, two tags, one second apart.
pub fn bench_chunk(i: u64) -> Chunk {
    let t = BASE_TIME_MS + i as i64 * 1000;
    Chunk {
        id: format!("bench-{i:08}"),
        content: format!("chunk {i:08} {}", filler()),
        source_kind: SourceKind::ALL[(i % 3) as usize],
        source_id: format!("source-{:05}", i / 100),
        source_ref: Some(format!("msg-{i}")),
        owner: format!("owner-{}", i % 8),
        timestamp_ms: t,
        time_range_start_ms: t - 60_000,
        time_range_end_ms: t,
        tags: vec!["bench".to_owned(), format!("topic-{}", i % 7)],
        token_count: 125,
        seq_in_source: (i % 100) as i64,
        created_at_ms: t + 500,
        lifecycle_status: DEFAULT_LIFECYCLE_STATUS.to_owned(),
        embedding: None,
        content_path: None,
        content_sha256: None,
    }
}

/// Chunks `start..start + count` of [`bench_chunk`].
pub fn bench_chunks(start: u64, count: usize) -> Vec<Chunk> {
    (start..start + count as u64).map(bench_chunk).collect()
}

/// The value of each chunk column for row number `i`, in
/// [`CHUNK_COLUMNS`] order: [`bench_chunk`] written as SQL. `?3` is the
/// filler, `?4` [`BASE_TIME_MS`]. The array's length is the column count, so
/// a new column does not build until it is generated here too.
const GENERATED_VALUES: [&str; CHUNK_COLUMNS.len()] = [
    "printf('bench-%08d', i)",
    "printf('chunk %08d ', i) || ?3",
    "CASE i % 3 WHEN 0 THEN 'chat' WHEN 1 THEN 'email' ELSE 'document' END",
    "printf('source-%05d', i / 100)",
    "'msg-' || i",
    "'owner-' || (i % 8)",
    "?4 + i * 1000",
    "?4 + i * 1000 - 60000",
    "?4 + i * 1000",
    "'[\"bench\",\"topic-' || (i % 7) || '\"]'",
    "125",
    "i % 100",
    "?4 + i * 1000 + 500",
    "'admitted'",
    "NULL",
    "NULL",
    "NULL",
];

/// The same rows as [`bench_chunks`], produced by SQLite alone. `?1` is the
/// first row number, `?2` the count, `?3` the filler, `?4` [`BASE_TIME_MS`].
static INSERT_SELECT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE n(i) AS ( \
           SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1 + ?2) \
         INSERT INTO mem_tree_chunks ({}) SELECT {} FROM n",
        CHUNK_COLUMNS.join(", "),
        GENERATED_VALUES.join(", ")
    )
});

/// One timed commit: wall time and the I/O it caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitSample {
    /// From `BEGIN IMMEDIATE` to the end of `COMMIT`.
    pub elapsed: Duration,
    /// VFS counters accumulated during the commit.
    pub io: IoStats,
}

/// What [`run_commits`] measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRun {
    /// The journal mode SQLite reported after the switch.
    pub journal_mode: String,
    /// One sample per timed commit, in order.
    pub samples: Vec<CommitSample>,
}

fn check_choice(field: &str, value: &str, allowed: &[&str]) -> Result<String> {
    let lower = value.to_ascii_lowercase();
    if allowed.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(Error::invalid(
            field,
            format!("{value:?} is not one of {}", allowed.join(", ")),
        ))
    }
}

/// A benchmark connection on `path` (created if missing) through the
/// `memtree` VFS, with memtree's connection pragmas, the given journal mode
/// and synchronous level, and memtree's schema. Returns the canonical path
/// (the VFS accounting key) with it.
pub fn open_bench_connection(
    path: &Path,
    journal_mode: &str,
    synchronous: &str,
) -> Result<(Connection, PathBuf, String)> {
    let journal = check_choice("journal_mode", journal_mode, &JOURNAL_MODES)?;
    let sync = check_choice("synchronous", synchronous, &SYNC_LEVELS)?;
    let path = canonical_db_path(path)?;
    let err = |ctx: &'static str| {
        let path = path.clone();
        move |e| Error::sqlite(ctx, &path, e)
    };
    let mut conn = connection::open_through_vfs(&path)?;
    journal::apply_connection_pragmas(&conn, &path)?;
    let reported: String = conn
        .query_row(&format!("PRAGMA journal_mode = {journal}"), [], |r| {
            r.get(0)
        })
        .map_err(err("bench: journal mode"))?;
    let reported = reported.to_ascii_lowercase();
    if reported != journal {
        return Err(Error::invalid(
            "journal_mode",
            format!("SQLite kept {reported} instead of {journal}"),
        ));
    }
    conn.execute_batch(&format!("PRAGMA synchronous = {sync};"))
        .map_err(err("bench: synchronous"))?;
    connection::migrate_schema(&mut conn, &path)?;
    Ok((conn, path, reported))
}

fn commit_batch(conn: &mut Connection, chunks: &[Chunk]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    crate::chunks::upsert_in(&tx, chunks)?;
    tx.commit()
}

/// Runs `warmup` untimed commits, then `commits` timed ones, each writing
/// `batch` new generated chunks with memtree's upsert in one `BEGIN
/// IMMEDIATE` transaction. Rows are generated before each clock starts.
pub fn run_commits(
    path: &Path,
    journal_mode: &str,
    synchronous: &str,
    batch: usize,
    commits: usize,
    warmup: usize,
) -> Result<CommitRun> {
    if batch == 0 {
        return Err(Error::invalid("batch", "must be >= 1"));
    }
    let (mut conn, key, journal_mode) = open_bench_connection(path, journal_mode, synchronous)?;
    let mut next = 0u64;
    let mut samples = Vec::with_capacity(commits);
    for round in 0..warmup + commits {
        let chunks = bench_chunks(next, batch);
        next += batch as u64;
        // Outside the clock: the counters then hold this commit's I/O alone.
        vfs::reset_io_stats(&key);
        let started = Instant::now();
        commit_batch(&mut conn, &chunks).map_err(|e| Error::sqlite("bench: commit", &key, e))?;
        let elapsed = started.elapsed();
        if round >= warmup {
            let io = vfs::io_stats(&key);
            samples.push(CommitSample { elapsed, io });
        }
    }
    Ok(CommitRun {
        journal_mode,
        samples,
    })
}

/// The pure-SQL baseline: inserts chunks `start..start + count` (identical to
/// [`bench_chunks`]) with one `INSERT … SELECT` in one transaction on a
/// connection configured exactly like the store's (TRUNCATE + FULL), and
/// returns the time from `BEGIN IMMEDIATE` to the end of `COMMIT`.
pub fn insert_select(path: &Path, start: u64, count: usize) -> Result<Duration> {
    let (mut conn, key, _) = open_bench_connection(path, "truncate", "full")?;
    let run = |conn: &mut Connection| -> rusqlite::Result<Duration> {
        let started = Instant::now();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            INSERT_SELECT_SQL.as_str(),
            rusqlite::params![start as i64, count as i64, filler(), BASE_TIME_MS],
        )?;
        tx.commit()?;
        Ok(started.elapsed())
    };
    run(&mut conn).map_err(|e| Error::sqlite("bench: insert … select", &key, e))
}

/// How [`core_loop`] binds each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// Lent to SQLite, not copied: what the store does for a batch.
    Lent,
    /// Copied by SQLite (rusqlite's `SQLITE_TRANSIENT`) on the cached
    /// statement: what the store does for a few rows, and did for every
    /// batch before lending.
    Copied,
}

/// The store's write loop without the store: inserts chunks
/// `start..start + count` (generated before the clock) on a connection configured like
/// the store's (TRUNCATE + FULL) with [`crate::chunks`]' upsert loop and
/// the given binding, in one transaction; returns the time from `BEGIN
/// IMMEDIATE` to the end of `COMMIT`, as [`insert_select`] does.
pub fn core_loop(path: &Path, start: u64, count: usize, binding: Binding) -> Result<Duration> {
    let (mut conn, key, _) = open_bench_connection(path, "truncate", "full")?;
    let chunks = bench_chunks(start, count);
    let run = |conn: &mut Connection| -> rusqlite::Result<Duration> {
        let started = Instant::now();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        crate::chunks::upsert_binding(&tx, &chunks, binding == Binding::Lent)?;
        tx.commit()?;
        Ok(started.elapsed())
    };
    run(&mut conn).map_err(|e| Error::sqlite("bench: core loop", &key, e))
}

/// The bench table-valued function [`insert_vtab`] reads the batch from:
/// `memtree_bench_rows(?1)` with `?1` the batch bound as a pointer.
const ROWS_VTAB: &CStr = c"memtree_bench_rows";

/// The `sqlite3_bind_pointer` type tag of a [`RowsArg`]: SQLite hands the
/// pointer to `sqlite3_value_pointer` only under this exact tag, so no SQL
/// text and no other extension can forge one.
const ROWS_POINTER: &CStr = c"memtree_bench_chunk_slice";

/// `INSERT … SELECT` of every chunk column from the batch's virtual table:
/// one statement, one step, for the whole batch.
static INSERT_VTAB_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO mem_tree_chunks ({0}) SELECT {0} FROM {1}(?1)",
        CHUNK_COLUMNS.join(", "),
        ROWS_VTAB.to_str().expect("ASCII name")
    )
});

/// Inserts chunks `start..start + count` (generated before the clock, as
/// [`core_loop`] does) with ONE statement for the batch: `INSERT … SELECT`
/// from an eponymous table-valued virtual table over the chunk slice, each
/// value handed to SQLite without a copy (tags' JSON, encoded per row, is
/// copied). Same connection set-up as [`insert_select`] and [`core_loop`];
/// returns the time from `BEGIN IMMEDIATE` to the end of `COMMIT`. Only for
/// new ids: a conflict fails the whole statement (the bench measures whether
/// one statement per batch beats one per row, not the upsert rule).
pub fn insert_vtab(path: &Path, start: u64, count: usize) -> Result<Duration> {
    let (mut conn, key, _) = open_bench_connection(path, "truncate", "full")?;
    rows_vtab::register(&conn).map_err(|e| Error::sqlite("bench: rows vtab", &key, e))?;
    let chunks = bench_chunks(start, count);
    let run = |conn: &mut Connection| -> rusqlite::Result<Duration> {
        let started = Instant::now();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        rows_vtab::insert_all(&tx, &INSERT_VTAB_SQL, &chunks)?;
        tx.commit()?;
        Ok(started.elapsed())
    };
    run(&mut conn).map_err(|e| Error::sqlite("bench: insert from vtab", &key, e))
}

/// The argument `memtree_bench_rows` receives: a borrowed chunk slice.
struct RowsArg {
    ptr: *const Chunk,
    len: usize,
}

/// An eponymous-only table-valued virtual table over a `&[Chunk]`, in raw
/// FFI: rusqlite 0.43's `vtab` feature (no extra dependency) sets every
/// text result with `SQLITE_TRANSIENT`, a copy per value, which is what
/// this bench must avoid; `sqlite3_result_text` with `SQLITE_STATIC` does not.
mod rows_vtab {
    use std::ffi::{c_char, c_int, c_void, CStr};
    use std::ptr;

    use rusqlite::types::ValueRef;
    use rusqlite::{ffi, Connection};

    use super::{RowsArg, ROWS_POINTER, ROWS_VTAB};
    use crate::chunk::Chunk;
    use crate::chunks::{each_value, Encoded, CHUNK_COLUMNS};

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
    /// pointers go into `chunks` (alive for the statement) or `scratch`
    /// (rewritten by the next `load`).
    #[repr(C)]
    struct Cursor {
        /// First field: SQLite casts between the two.
        base: ffi::sqlite3_vtab_cursor,
        chunks: *const Chunk,
        len: usize,
        row: usize,
        scratch: Encoded,
        values: [Raw; N],
    }

    impl Cursor {
        /// Encodes row `self.row` into `values`, if there is one.
        fn load(&mut self) -> c_int {
            if self.row >= self.len {
                return ffi::SQLITE_OK;
            }
            // SAFETY: `chunks..chunks + len` is the slice `insert_all`
            // borrows for the whole statement (see its SAFETY note).
            let c = unsafe { &*self.chunks.add(self.row) };
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

    /// Registers the module on `conn` (eponymous-only: no `xCreate`).
    pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
        // SAFETY: `MODULE` is a static, so it outlives the connection; no
        // client data, so no destructor.
        let rc = unsafe {
            ffi::sqlite3_create_module_v2(
                conn.handle(),
                ROWS_VTAB.as_ptr(),
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

    /// Runs `sql` (reading `memtree_bench_rows(?1)`) once with `?1` bound
    /// to `chunks`, to completion.
    pub(super) fn insert_all(
        conn: &Connection,
        sql: &str,
        chunks: &[Chunk],
    ) -> rusqlite::Result<()> {
        // SAFETY: the handle is used only in this call, on this thread
        // (`Connection` is not `Sync`), and the statement is finalized
        // before it returns.
        let db = unsafe { conn.handle() };
        // Declared before the statement, so it is dropped after it.
        let arg = RowsArg {
            ptr: chunks.as_ptr(),
            len: chunks.len(),
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
                ROWS_POINTER.as_ptr(),
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
            if c.iColumn == BATCH && c.op == ffi::SQLITE_INDEX_CONSTRAINT_EQ as u8 && c.usable != 0
            {
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
            chunks: ptr::null(),
            len: 0,
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
        // unless it was bound with exactly `ROWS_POINTER`, which only
        // `insert_all` does, with a `RowsArg` alive for the step.
        let arg = if argc == 1 {
            unsafe { ffi::sqlite3_value_pointer(*argv, ROWS_POINTER.as_ptr()) }
                .cast::<RowsArg>()
                .cast_const()
        } else {
            ptr::null()
        };
        // A missing or forged argument is an empty table, as carray does.
        // SAFETY: see above.
        (cursor.chunks, cursor.len) = match unsafe { arg.as_ref() } {
            Some(a) => (a.ptr, a.len),
            None => (ptr::null(), 0),
        };
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
        c_int::from(cursor.row >= cursor.len)
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
                ffi::sqlite3_result_text64(
                    ctx,
                    p.cast(),
                    n as u64,
                    destructor,
                    ffi::SQLITE_UTF8 as u8,
                );
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
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "memtree-bench-{tag}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir.canonicalize().unwrap())
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    type Row = Vec<rusqlite::types::Value>;

    fn all_rows(path: &Path) -> Vec<Row> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare(&format!("{} ORDER BY id", *crate::chunks::SELECT_SQL))
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                (0..CHUNK_COLUMNS.len())
                    .map(|i| r.get(i))
                    .collect::<rusqlite::Result<Row>>()
            })
            .unwrap();
        rows.collect::<rusqlite::Result<Vec<Row>>>().unwrap()
    }

    #[test]
    fn generated_chunks_are_valid_and_500_bytes() -> Result<()> {
        for i in [0, 1, 99, 12_345_678] {
            let c = bench_chunk(i);
            c.validate("")?;
            assert_eq!(c.content.len(), CONTENT_BYTES);
        }
        Ok(())
    }

    #[test]
    fn sql_baseline_writes_the_same_rows_as_the_upsert_path() -> Result<()> {
        let dir = TempDir::new("same-rows");
        let (a, b) = (dir.0.join("a.db"), dir.0.join("b.db"));
        insert_select(&a, 95, 20)?;
        let run = run_commits(&b, "truncate", "full", 10, 1, 1)?;
        assert_eq!(run.samples.len(), 1);
        // b holds rows 0..20; a holds 95..115: compare a's rows to fresh upserts.
        let (mut conn, ..) = open_bench_connection(&dir.0.join("c.db"), "truncate", "off")?;
        commit_batch(&mut conn, &bench_chunks(95, 20)).unwrap();
        drop(conn);
        assert_eq!(all_rows(&a), all_rows(&dir.0.join("c.db")));
        assert_eq!(all_rows(&b).len(), 20);
        Ok(())
    }

    #[test]
    fn upsert_matches_sql_and_keeps_the_last_duplicate() -> Result<()> {
        let dir = TempDir::new("dupes");
        let (a, b) = (dir.0.join("a.db"), dir.0.join("b.db"));
        insert_select(&a, 0, 150)?;
        let (mut conn, ..) = open_bench_connection(&b, "truncate", "off")?;
        commit_batch(&mut conn, &bench_chunks(0, 150)).unwrap();
        assert_eq!(all_rows(&a), all_rows(&b));
        // Existing ids and an id repeated inside one batch take the conflict
        // path: the later row wins and nothing else changes.
        let mut batch = bench_chunks(0, 64);
        batch[10].content = "first".into();
        batch[40] = Chunk {
            content: "second".into(),
            ..batch[10].clone()
        };
        commit_batch(&mut conn, &batch).unwrap();
        let (content, count): (String, i64) = conn
            .query_row(
                "SELECT (SELECT content FROM mem_tree_chunks WHERE id = 'bench-00000010'), \
                 (SELECT count(*) FROM mem_tree_chunks)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((content.as_str(), count), ("second", 150));
        // New ids first, then one of them again: the switch to the upsert
        // happens mid-batch and the earlier inserts stay, on the cached
        // statement (10 + 1 rows) and on the lent one.
        let mut total = 150;
        for new_rows in [10, crate::chunks::LENT_BIND_MIN_ROWS] {
            let mut batch = bench_chunks(total as u64, new_rows);
            batch.push(Chunk {
                content: "again".into(),
                ..batch[5].clone()
            });
            commit_batch(&mut conn, &batch).unwrap();
            total += new_rows as i64;
            let (content, count): (String, i64) = conn
                .query_row(
                    "SELECT (SELECT content FROM mem_tree_chunks WHERE id = ?1), \
                     (SELECT count(*) FROM mem_tree_chunks)",
                    [&batch[5].id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!((content.as_str(), count), ("again", total));
        }
        Ok(())
    }

    #[test]
    fn one_statement_from_the_vtab_writes_the_sql_baselines_rows() -> Result<()> {
        let dir = TempDir::new("vtab");
        for (start, count) in [(7, 40), (0, 1), (3, 0)] {
            let sql = dir.0.join(format!("sql-{start}-{count}.db"));
            let vtab = dir.0.join(format!("vtab-{start}-{count}.db"));
            insert_select(&sql, start, count.max(1))?;
            insert_vtab(&vtab, start, count)?;
            let want = all_rows(&sql);
            let got = all_rows(&vtab);
            assert_eq!(got.len(), count);
            assert_eq!(got[..], want[..count]);
        }
        Ok(())
    }

    #[test]
    fn vtab_insert_of_an_existing_id_fails_and_leaves_the_rows() -> Result<()> {
        let dir = TempDir::new("vtab-conflict");
        let path = dir.0.join("a.db");
        insert_vtab(&path, 0, 5)?;
        // A second insert of ids 3..8 conflicts on 3 and 4: the statement
        // (and its transaction) fails whole, the first five rows stay.
        let err = insert_vtab(&path, 3, 5).unwrap_err();
        assert!(matches!(err, Error::Sqlite { .. }), "{err:?}");
        assert_eq!(all_rows(&path).len(), 5);
        Ok(())
    }

    #[test]
    fn vtab_without_its_pointer_is_an_empty_table() {
        let conn = Connection::open_in_memory().unwrap();
        rows_vtab::register(&conn).unwrap();
        // A plain value (not a bound pointer with the tag) reads nothing.
        let n: i64 = conn
            .query_row("SELECT count(*) FROM memtree_bench_rows('x')", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 0);
        // Without the argument there is no plan at all.
        assert!(conn.prepare("SELECT * FROM memtree_bench_rows").is_err());
    }

    #[test]
    fn both_bindings_write_the_sql_baselines_rows() -> Result<()> {
        let dir = TempDir::new("bindings");
        insert_select(&dir.0.join("sql.db"), 7, 40)?;
        let want = all_rows(&dir.0.join("sql.db"));
        assert_eq!(want.len(), 40);
        for (name, binding) in [("lent", Binding::Lent), ("copied", Binding::Copied)] {
            let path = dir.0.join(format!("{name}.db"));
            core_loop(&path, 7, 40, binding)?;
            assert_eq!(all_rows(&path), want, "{name}");
        }
        Ok(())
    }

    #[test]
    fn sync_counts_per_commit_match_the_design() -> Result<()> {
        let dir = TempDir::new("syncs");
        // (journal, sync, journal xSync, db xSync, wal xSync, xTruncate, xDelete)
        let cases: [(&str, &str, u64, u64, u64, u64, u64); 7] = [
            ("truncate", "full", 3, 1, 0, 1, 0),
            // PERSIST zeroes the journal header (a write, then its sync)
            // where TRUNCATE truncates: the same syncs, no xTruncate.
            ("persist", "full", 3, 1, 0, 0, 0),
            // NORMAL drops the sync before the commit record, but SQLite
            // syncs a zeroed header whatever the level (it syncs a truncated
            // journal only under FULL): one more than TRUNCATE+NORMAL.
            ("persist", "normal", 2, 1, 0, 0, 0),
            ("truncate", "normal", 1, 1, 0, 1, 0),
            ("delete", "full", 2, 1, 0, 0, 1),
            ("wal", "full", 0, 0, 1, 0, 0),
            ("wal", "normal", 0, 0, 0, 0, 0),
        ];
        for (journal, sync, journal_syncs, db_syncs, wal_syncs, truncates, deletes) in cases {
            let path = dir.0.join(format!("{journal}-{sync}.db"));
            let run = run_commits(&path, journal, sync, 1, 3, 1)?;
            assert_eq!(run.journal_mode, journal);
            for s in &run.samples {
                let io = s.io;
                assert_eq!(
                    (io.syncs_journal, io.syncs_db, io.syncs_wal),
                    (journal_syncs, db_syncs, wal_syncs),
                    "{journal}+{sync}: {io:?}"
                );
                assert_eq!(
                    (io.truncates, io.deletes),
                    (truncates, deletes),
                    "{journal}+{sync}: {io:?}"
                );
                // Every rollback mode reopens its journal with O_CREAT per
                // transaction, so its first sync carries a directory fsync.
                let dir_syncs = u64::from(cfg!(unix) && journal != "wal");
                assert_eq!(io.syncs_dir, dir_syncs, "{journal}+{sync}: {io:?}");
                assert!(io.bytes_written > 0);
            }
        }
        Ok(())
    }

    #[test]
    fn bad_mode_is_invalid_input() {
        let dir = TempDir::new("bad");
        let err = run_commits(&dir.0.join("x.db"), "wall", "full", 1, 1, 0).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    }
}
