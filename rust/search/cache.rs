//! The stored embeddings held in memory for search, one matrix per
//! dimension and table, and the rule that keeps them equal to the file.
//!
//! Reading 100k × 768 blobs back out of SQLite costs more than scoring them,
//! so a search scores a copy in RAM. The copy is exact, never stale, and is
//! read again only when the rows it copies can have changed:
//!
//! - It belongs to one SQLite connection (attached with
//!   `sqlite3_set_clientdata` and freed by `sqlite3_close`), so a connection
//!   that replaces another (quarantine puts a new file in place) starts empty.
//! - It is keyed on the table's **vector version** paired with the **schema
//!   cookie** ([`Key::Versioned`]), both read inside the search's own read
//!   transaction. Triggers of the schema (`schema::vector_version_triggers`)
//!   bump a table's version in the writing statement's own transaction on
//!   every insert, every delete of an embedded row and every update of a
//!   row's rowid, id, embedding (and a summary's `deleted`), whoever writes:
//!   memtree's paths, another process, OpenHuman's own SQL. A job claim or
//!   settle, a score, a lifecycle or re-ingest write leave the version, and
//!   the copy, as they are. The cookie moves when the contents are replaced
//!   wholesale without a row write: a restore or a quarantine (the backup
//!   API writes the destination's cookie + 1), a VACUUM (cookie + 1; it may
//!   renumber rowids), any DDL; so equal versions of two different contents
//!   are never taken for one another.
//! - The triggers are trusted only while `sqlite_master` holds exactly this
//!   build's text for each of them and the version rows exist (checked once
//!   per schema cookie). Otherwise (a file restored from an older backup, a
//!   trigger dropped by another tool) the key falls back to the pager's data
//!   version ([`Key::DataVersion`], `SQLITE_FCNTL_DATA_VERSION`), which
//!   changes on every commit of this connection and whenever SQLite finds
//!   that another connection, in any process, committed. `PRAGMA
//!   data_version` would miss this connection's own commits.
//! - Any other key rebuilds the copy from the same read transaction.
//!
//! What the triggers cannot see: a writer that disables triggers
//! (`SQLITE_DBCONFIG_ENABLE_TRIGGER`) or rewrites the version rows itself.
//!
//! Rows stay in rowid order (the order of the table scan that builds them);
//! each row knows its rank by id, which breaks score ties.
//!
//! On Linux a large matrix is asked to live on transparent huge pages
//! (`MADV_HUGEPAGE`, as numpy does for its large arrays): a scan streams
//! hundreds of megabytes, and with 4 KiB pages it spends a third of its time
//! on TLB misses (measured on the 100k x 768 bench: 27 ms of CPU per scan on
//! 4 KiB pages, 18 ms on 2 MiB pages).

use std::collections::HashMap;
use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use rusqlite::{ffi, Connection, OptionalExtension};

use super::vector::{inverse_norm, Rows};
use crate::schema::{vector_version_triggers, VECTOR_VERSIONED_TABLES, VECTOR_VERSIONS_TABLE};

/// The rows of one table whose embedding has one dimension.
#[derive(Debug, Default)]
pub struct Matrix {
    /// Width of a row.
    pub dim: usize,
    /// Rowid of each row, ascending.
    pub rowids: Vec<i64>,
    /// Primary key of each row.
    pub ids: Vec<String>,
    /// Each row's rank in id order (ties go to the lower rank).
    pub id_ranks: Vec<u32>,
    /// The values, row-major.
    pub data: Vec<f32>,
    /// `1 / |row|` of each row (0 for a zero row).
    pub inverse_norms: Vec<f32>,
}

impl Matrix {
    /// The matrix as the scan takes it.
    pub fn rows(&self) -> Rows<'_> {
        Rows {
            dim: self.dim,
            data: &self.data,
            inverse_norms: &self.inverse_norms,
            id_ranks: &self.id_ranks,
        }
    }

    /// The rows of these rowids (ascending in, ascending out); rowids this
    /// matrix does not hold (no embedding, another dimension) are skipped.
    pub fn rows_of(&self, rowids: &[i64]) -> Vec<u32> {
        let mut out = Vec::with_capacity(rowids.len().min(self.rowids.len()));
        let mut from = 0;
        for rowid in rowids {
            // Both lists ascend, so each search starts where the last ended.
            let at = from + self.rowids[from..].partition_point(|r| r < rowid);
            if at == self.rowids.len() {
                break;
            }
            if self.rowids[at] == *rowid {
                out.push(at as u32);
            }
            from = at;
        }
        out
    }

    /// An empty matrix with room for `rows` rows.
    fn with_capacity(dim: usize, rows: usize) -> Matrix {
        Matrix {
            dim,
            rowids: Vec::with_capacity(rows),
            ids: Vec::with_capacity(rows),
            id_ranks: Vec::new(),
            data: huge_page_vec(rows.saturating_mul(dim)),
            inverse_norms: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, rowid: i64, id: String, blob: &[u8]) {
        let start = self.data.len();
        self.data.extend(
            blob.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        self.inverse_norms.push(inverse_norm(&self.data[start..]));
        self.rowids.push(rowid);
        self.ids.push(id);
    }

    fn rank_ids(&mut self) {
        let mut order: Vec<u32> = (0..self.ids.len() as u32).collect();
        order.sort_unstable_by(|a, b| self.ids[*a as usize].cmp(&self.ids[*b as usize]));
        self.id_ranks = vec![0; order.len()];
        for (rank, row) in order.into_iter().enumerate() {
            self.id_ranks[row as usize] = rank as u32;
        }
    }
}

/// Below this many bytes a matrix stays on ordinary pages.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// An empty `Vec` with room for `floats`, its memory advised onto
/// transparent huge pages when large (Linux; elsewhere an ordinary `Vec`).
/// Untouched capacity is only address space: a count that overestimates
/// (rows without an embedding) costs no memory once shrunk to fit.
fn huge_page_vec(floats: usize) -> Vec<f32> {
    let mut data = Vec::with_capacity(floats);
    #[cfg(target_os = "linux")]
    if floats * 4 >= HUGE_PAGE_MIN_BYTES {
        const HUGE: usize = 2 << 20;
        let start = data.as_mut_ptr() as usize;
        let aligned = start.next_multiple_of(HUGE);
        let end = (start + floats * 4) / HUGE * HUGE;
        if end > aligned {
            // SAFETY: the range lies inside this Vec's own allocation; the
            // advice changes how the kernel backs it, not its contents, and
            // a refusal (THP disabled) leaves ordinary pages.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    end - aligned,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    data
}

/// One table's embedded rows at one data version: a matrix per dimension.
#[derive(Debug, Default)]
pub struct Snapshot {
    matrices: HashMap<usize, Matrix>,
}

impl Snapshot {
    /// The rows of this dimension, if any.
    pub fn matrix(&self, dim: usize) -> Option<&Matrix> {
        self.matrices.get(&dim)
    }

    /// The id of the row `rowid`, when this snapshot holds its vector (of
    /// any dimension): exact in the read transaction the snapshot was taken
    /// for, since its key moves with every insert and every change of a
    /// row's rowid or id.
    pub fn id_of(&self, rowid: i64) -> Option<&str> {
        self.matrices.values().find_map(|m| {
            let at = m.rowids.binary_search(&rowid).ok()?;
            Some(m.ids[at].as_str())
        })
    }

    /// Floats held, for memory accounting.
    pub fn floats(&self) -> usize {
        self.matrices.values().map(|m| m.data.len()).sum()
    }
}

/// Which table a snapshot copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `mem_tree_chunks`.
    Chunks,
    /// `mem_tree_summaries`, live rows only.
    Summaries,
}

impl Table {
    /// The id of the table's row in [`VECTOR_VERSIONS_TABLE`], as
    /// [`VECTOR_VERSIONED_TABLES`] lists it.
    fn version_row(self) -> i64 {
        let name = match self {
            Table::Chunks => "mem_tree_chunks",
            Table::Summaries => "mem_tree_summaries",
        };
        VECTOR_VERSIONED_TABLES
            .iter()
            .find(|(table, _, _)| *table == name)
            .map(|(_, row, _)| *row)
            .expect("every searched table has a vector version row")
    }

    fn count_sql(self) -> &'static str {
        match self {
            Table::Chunks => "SELECT count(*) FROM mem_tree_chunks",
            Table::Summaries => "SELECT count(*) FROM mem_tree_summaries",
        }
    }

    fn scan_sql(self) -> &'static str {
        match self {
            Table::Chunks => {
                "SELECT rowid, id, embedding FROM mem_tree_chunks WHERE embedding IS NOT NULL"
            }
            Table::Summaries => {
                "SELECT rowid, id, embedding FROM mem_tree_summaries \
                 WHERE deleted = 0 AND embedding IS NOT NULL"
            }
        }
    }
}

/// What a snapshot was read at: two reads at one key copy the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// The table's vector version under one schema cookie (see the module
    /// notes).
    Versioned {
        /// `PRAGMA schema_version`.
        schema: i64,
        /// The table's row of `memtree_vector_versions`.
        version: i64,
    },
    /// The pager's data version: the triggers are not (all) in place.
    DataVersion(u32),
}

/// The per-connection cache: the last snapshot of each table and the key
/// it was read at, and whether the schema of one cookie keeps the versions.
#[derive(Default)]
struct Cache {
    chunks: Option<(Key, Arc<Snapshot>)>,
    summaries: Option<(Key, Arc<Snapshot>)>,
    versions_kept: Option<(i64, bool)>,
}

const CLIENT_DATA: &CStr = c"memtree.vector_cache";

unsafe extern "C" fn free_cache(p: *mut c_void) {
    // SAFETY: `p` is the `Box<Mutex<Cache>>` leaked by `cache_of`; SQLite
    // calls this once, when the connection closes or the data is replaced.
    drop(unsafe { Box::from_raw(p.cast::<Mutex<Cache>>()) });
}

/// The connection's cache, attached on first use.
fn cache_of(conn: &Connection) -> &Mutex<Cache> {
    // SAFETY: the handle is valid for the borrow of `conn`; memtree uses a
    // connection from one thread at a time (behind its mutex), so attaching
    // cannot race. The returned reference lives no longer than `conn`, and
    // the data is freed only when the connection closes.
    unsafe {
        let db = conn.handle();
        let mut p = ffi::sqlite3_get_clientdata(db, CLIENT_DATA.as_ptr());
        if p.is_null() {
            let boxed = Box::into_raw(Box::new(Mutex::new(Cache::default())));
            p = boxed.cast();
            let rc = ffi::sqlite3_set_clientdata(db, CLIENT_DATA.as_ptr(), p, Some(free_cache));
            if rc != ffi::SQLITE_OK {
                // Only on out-of-memory; the destructor already ran.
                return Box::leak(Box::new(Mutex::new(Cache::default())));
            }
        }
        &*p.cast::<Mutex<Cache>>()
    }
}

/// The pager's data version of `main` (see the module notes). Call inside a
/// read transaction, after a statement took the shared lock.
fn data_version(conn: &Connection) -> rusqlite::Result<u32> {
    let mut version: u32 = 0;
    // SAFETY: `SQLITE_FCNTL_DATA_VERSION` writes one `unsigned int` through
    // the pointer; the handle is valid for the borrow of `conn`.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_DATA_VERSION,
            (&mut version as *mut u32).cast(),
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None));
    }
    Ok(version)
}

/// True when the schema at cookie `schema` keeps the vector versions: every
/// trigger of `schema::vector_version_triggers` stored with exactly this
/// build's text. Asked of `sqlite_master` once per cookie (any change to a
/// trigger moves the cookie).
fn versions_are_kept(conn: &Connection, schema: i64) -> rusqlite::Result<bool> {
    let cache = cache_of(conn);
    if let Some((at, kept)) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .versions_kept
    {
        if at == schema {
            return Ok(kept);
        }
    }
    let mut stmt =
        conn.prepare_cached("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1")?;
    let mut kept = true;
    for (name, sql) in vector_version_triggers() {
        let stored: Option<Option<String>> = stmt.query_row([&name], |r| r.get(0)).optional()?;
        if stored.flatten().as_deref() != Some(sql.as_str()) {
            kept = false;
            break;
        }
    }
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .versions_kept = Some((schema, kept));
    Ok(kept)
}

/// A table's vector version, by the id of its row (`?1`); built once.
static VERSION_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT version FROM {VECTOR_VERSIONS_TABLE} WHERE id = ?1"));

/// The key of `table` in the read transaction open on `conn`, whose `PRAGMA
/// schema_version` (read inside it, after its shared lock) is `schema`.
pub fn key(conn: &Connection, table: Table, schema: i64) -> rusqlite::Result<Key> {
    if versions_are_kept(conn, schema)? {
        let version: Option<i64> = conn
            .prepare_cached(&VERSION_SQL)?
            .query_row([table.version_row()], |r| r.get(0))
            .optional()?;
        // A missing row (deleted by another tool) bumps nothing: fall back.
        if let Some(version) = version {
            return Ok(Key::Versioned { schema, version });
        }
    }
    Ok(Key::DataVersion(data_version(conn)?))
}

/// The embedded rows of `table` at `key` (read by [`key`] in the read
/// transaction open on `conn`): the cached snapshot if it was read at that
/// key, else a new one read now (and cached).
pub fn snapshot(conn: &Connection, table: Table, key: Key) -> rusqlite::Result<Arc<Snapshot>> {
    let cache = cache_of(conn);
    {
        let guard = cache.lock().unwrap_or_else(|p| p.into_inner());
        let slot = match table {
            Table::Chunks => &guard.chunks,
            Table::Summaries => &guard.summaries,
        };
        if let Some((at, snapshot)) = slot {
            if *at == key {
                return Ok(Arc::clone(snapshot));
            }
        }
    }
    // The stale copy goes first, so memory never holds two full copies.
    {
        let mut guard = cache.lock().unwrap_or_else(|p| p.into_inner());
        match table {
            Table::Chunks => guard.chunks = None,
            Table::Summaries => guard.summaries = None,
        }
    }
    let snapshot = Arc::new(read_snapshot(conn, table)?);
    let mut guard = cache.lock().unwrap_or_else(|p| p.into_inner());
    let slot = match table {
        Table::Chunks => &mut guard.chunks,
        Table::Summaries => &mut guard.summaries,
    };
    *slot = Some((key, Arc::clone(&snapshot)));
    Ok(snapshot)
}

/// Snapshots read from the file by this process (a test counts them to prove
/// the cache is reused across unrelated commits, and dropped after every
/// write that changes the rows it copies).
static SNAPSHOT_READS: AtomicU64 = AtomicU64::new(0);

/// How many snapshots this process has read from its files.
pub fn snapshot_reads() -> u64 {
    SNAPSHOT_READS.load(Ordering::Relaxed)
}

/// Reads every embedded row of `table`. A blob that is no float32 vector
/// (empty, or a length not a multiple of 4) has no dimension and is skipped,
/// as a row of another dimension is.
fn read_snapshot(conn: &Connection, table: Table) -> rusqlite::Result<Snapshot> {
    SNAPSHOT_READS.fetch_add(1, Ordering::Relaxed);
    // Sizes a matrix once (most tables hold one dimension), so its memory is
    // allocated and advised before it is written, never copied as it grows.
    let rows_at_most: usize = conn
        .prepare_cached(table.count_sql())?
        .query_row([], |r| r.get::<_, i64>(0))?
        .try_into()
        .unwrap_or(0);
    let mut stmt = conn.prepare_cached(table.scan_sql())?;
    let mut rows = stmt.query([])?;
    let mut matrices: HashMap<usize, Matrix> = HashMap::new();
    let mut first_dim = true;
    while let Some(row) = rows.next()? {
        let Some(blob) = row.get_ref(2)?.as_blob_or_null()? else {
            continue;
        };
        if blob.is_empty() || blob.len() % 4 != 0 {
            continue;
        }
        let dim = blob.len() / 4;
        let matrix = matrices.entry(dim).or_insert_with(|| {
            if first_dim {
                first_dim = false;
                Matrix::with_capacity(dim, rows_at_most)
            } else {
                Matrix {
                    dim,
                    ..Matrix::default()
                }
            }
        });
        matrix.push(row.get(0)?, row.get(1)?, blob);
    }
    for matrix in matrices.values_mut() {
        matrix.rank_ids();
        matrix.data.shrink_to_fit();
    }
    Ok(Snapshot { matrices })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_maps_ascending_rowids_and_skips_the_missing() {
        let m = Matrix {
            rowids: vec![2, 5, 9, 12],
            ..Matrix::default()
        };
        assert_eq!(m.rows_of(&[1, 2, 9, 10, 12, 40]), vec![0, 2, 3]);
        assert_eq!(m.rows_of(&[]), Vec::<u32>::new());
    }

    /// The key of the chunks in a read transaction of its own.
    fn chunk_key(c: &Connection) -> rusqlite::Result<Key> {
        c.execute_batch("BEGIN")?;
        let schema: i64 = c.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
        let key = key(c, Table::Chunks, schema);
        c.execute_batch("COMMIT")?;
        key
    }

    #[test]
    fn the_key_is_the_version_only_while_the_triggers_are_exactly_in_place() -> crate::Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = crate::Store::open_file(&dir.path().join("k.db"))?;
        let c = Connection::open(store.path()).expect("open");
        let run = |sql: &str| c.execute_batch(sql).expect(sql);
        let k0 = chunk_key(&c).expect("key");
        let Key::Versioned { schema, version: 0 } = k0 else {
            panic!("{k0:?}")
        };
        run(
            "INSERT INTO mem_tree_jobs (id, kind, payload_json, available_at_ms, created_at_ms) \
             VALUES ('j', 'k', '{}', 1, 1)",
        );
        assert_eq!(chunk_key(&c).expect("key"), k0, "a job leaves the key");
        run(
            "INSERT INTO mem_tree_chunks (id, source_kind, source_id, owner, timestamp_ms, \
                 time_range_start_ms, time_range_end_ms, content, token_count, seq_in_source, \
                 created_at_ms) VALUES ('a', 'chat', 's', 'o', 1, 1, 1, 'w', 1, 0, 1)",
        );
        assert_eq!(
            chunk_key(&c).expect("key"),
            Key::Versioned { schema, version: 1 }
        );
        // A trigger dropped, or stored with another text: the data version.
        let (name, sql) = vector_version_triggers().remove(2);
        run(&format!("DROP TRIGGER {name}"));
        assert!(matches!(chunk_key(&c).expect("key"), Key::DataVersion(_)));
        run(&format!("{} ", sql.replace("BEGIN", "BEGIN SELECT 1;")));
        assert!(matches!(chunk_key(&c).expect("key"), Key::DataVersion(_)));
        run(&format!("DROP TRIGGER {name}; {sql}"));
        let Key::Versioned {
            schema: moved,
            version: 1,
        } = chunk_key(&c).expect("key")
        else {
            panic!("the exact text is trusted again")
        };
        assert_ne!(moved, schema, "every DDL moves the cookie");
        // VACUUM (compact) moves the cookie too: it may renumber rowids.
        run("VACUUM");
        assert!(matches!(
            chunk_key(&c).expect("key"),
            Key::Versioned { schema, version: 1 } if schema != moved
        ));
        // A missing version row bumps nothing: the data version.
        run(&format!("DELETE FROM {VECTOR_VERSIONS_TABLE} WHERE id = 1"));
        assert!(matches!(chunk_key(&c).expect("key"), Key::DataVersion(_)));
        Ok(())
    }

    #[test]
    fn the_data_version_moves_with_own_and_other_commits() -> rusqlite::Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v.db");
        let a = Connection::open(&path)?;
        let b = Connection::open(&path)?;
        a.execute_batch("CREATE TABLE t(x)")?;
        let read = |c: &Connection| -> rusqlite::Result<u32> {
            c.execute_batch("BEGIN; PRAGMA schema_version;")?;
            let v = data_version(c);
            c.execute_batch("COMMIT")?;
            v
        };
        let v0 = read(&a)?;
        assert_eq!(read(&a)?, v0, "no change, same version");
        a.execute("INSERT INTO t VALUES (1)", [])?;
        let v1 = read(&a)?;
        assert_ne!(v1, v0, "own commit");
        b.execute("INSERT INTO t VALUES (2)", [])?;
        assert_ne!(read(&a)?, v1, "another connection's commit");
        Ok(())
    }
}
