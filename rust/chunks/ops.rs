//! The chunk operations on an open [`Store`]: upsert, reads, filtered
//! listing, lifecycle status, the ingest gate and set-based deletion. The
//! row they read and write is [`crate::chunks::row`]'s.

use std::borrow::Borrow;
use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Transaction};

use crate::chunks::packed::PackedChunk;
use crate::chunks::paging::ListCursor;
use crate::chunks::record::{non_empty, Chunk, SourceKind};
use crate::chunks::row::{
    bind_chunk, chunk_from_row, Encoded, CHUNK_COLUMNS, GET_MANY_SQL, GET_SQL, INSERT_SQL,
    SELECT_SQL, UPSERT_SQL,
};
use crate::db::packed::Unpack;
use crate::db::raw_columns::RowPacker;
use crate::db::store::Store;
use crate::error::{Error, Result};
use crate::sys::clock::now_ms;

/// The most rows one `list_chunks` (or jobs `list` / `claim_many`) call returns.
pub const MAX_LIST_LIMIT: i64 = 10_000;

/// Filters for [`Store::list_chunks`]; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkFilter {
    /// Only this source kind.
    pub source_kind: Option<SourceKind>,
    /// Only this source id.
    pub source_id: Option<String>,
    /// Only this owner.
    pub owner: Option<String>,
    /// Only chunks with `timestamp_ms >= since_ms`.
    pub since_ms: Option<i64>,
    /// Only chunks with `timestamp_ms < until_ms`.
    pub until_ms: Option<i64>,
}

/// Counts returned by [`Store::replace_source_chunks`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaceOutcome {
    /// Chunks inserted or updated.
    pub upserted: usize,
    /// Stale chunks of the source removed (with their score and entity rows).
    pub removed: usize,
}

/// What the chunk operations take: an owned chunk, a reference, or a
/// [`Prevalidated`] reference. Validation runs once per call: the store
/// checks every chunk unless its type says it was checked already.
pub trait ChunkInput: Borrow<Chunk> {
    /// True when every value of this type already passed [`Chunk::validate`].
    const PREVALIDATED: bool = false;
}

impl ChunkInput for Chunk {}
impl ChunkInput for &Chunk {}

/// A chunk that already passed [`Chunk::validate`]: the Python `Chunk` is
/// validated when built (constructor, `replace`, unpickling) or read back
/// from a database, and is immutable, so the glue vouches for it and the
/// store does not check it a second time. Only this crate can vouch.
#[derive(Debug, Clone, Copy)]
pub struct Prevalidated<'a>(&'a Chunk);

impl<'a> Prevalidated<'a> {
    /// Vouches that `chunk` passed [`Chunk::validate`]. Only the Python glue
    /// (and tests) vouch, so a build without it does not use this.
    #[cfg_attr(not(feature = "python"), allow(dead_code))]
    pub(crate) fn vouch(chunk: &'a Chunk) -> Self {
        Prevalidated(chunk)
    }
}

impl Borrow<Chunk> for Prevalidated<'_> {
    fn borrow(&self) -> &Chunk {
        self.0
    }
}

impl ChunkInput for Prevalidated<'_> {
    const PREVALIDATED: bool = true;
}

/// The chunk operations (the handle itself lives in [`crate::db::store`]).
impl Store {
    /// Inserts `chunks` in one transaction; returns how many. An id already
    /// stored is re-ingested: its ingest fields are replaced and its derived
    /// state ([`Role::Derived`](crate::chunks::row::Role::Derived) columns, raw refs, content pointers, parent
    /// summary) is kept. Takes owned chunks or references, so callers need
    /// not copy them.
    /// Every chunk is validated first (unless [`Prevalidated`]): `Chunk`'s
    /// fields are public and nothing checks them when a Rust caller builds
    /// one, so this is the guard that keeps an unreadable row out of the file.
    pub fn upsert_chunks<C: ChunkInput>(&self, chunks: &[C]) -> Result<usize> {
        validate_all(chunks)?;
        if chunks.is_empty() {
            // Nothing to write: no transaction (and no group commit to
            // join); a closed handle still says so.
            self.database()?;
            return Ok(0);
        }
        self.write("upsert_chunks", |tx| upsert_in(tx, chunks))
    }

    /// One chunk by id.
    pub fn get_chunk(&self, id: &str) -> Result<Option<Chunk>> {
        self.read("get_chunk", |conn| {
            let mut stmt = conn.prepare_cached(&GET_SQL)?;
            let mut rows = stmt.query([id])?;
            rows.next()?.map(chunk_from_row).transpose()
        })
    }

    /// The chunks with these ids, in the order asked; missing ids are
    /// skipped and an id asked twice is returned twice. One statement, so one
    /// read lock, whatever the number of ids ([`GET_MANY_SQL`]).
    pub fn get_chunks(&self, ids: &[String]) -> Result<Vec<Chunk>> {
        Ok(unpack_all(self.get_chunks_packed(ids)?))
    }

    /// [`Store::get_chunks`], each chunk kept as its row's bytes (what the
    /// Python glue wraps: a chunk is decoded when a field is first read).
    pub fn get_chunks_packed(&self, ids: &[String]) -> Result<Vec<PackedChunk>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Serialising strings cannot fail; the error path keeps it panic-free.
        let ids_json =
            serde_json::to_string(ids).map_err(|e| Error::invalid("ids", e.to_string()))?;
        self.read("get_chunks", |conn| {
            // Sized for the common case; a long list of mostly missing ids
            // must not reserve a chunk per id.
            let mut found = read_packed(
                conn,
                &GET_MANY_SQL,
                [&ids_json],
                ids.len().min(1024),
                |row, chunk| Ok((row.get::<_, i64>(CHUNK_COLUMNS.len())?, chunk)),
            )?
            .rows;
            // Already in order with the plan SQLite picks (json_each outer);
            // the sort is the guarantee, and cheap on sorted input.
            found.sort_by_key(|(at, _)| *at);
            Ok(found.into_iter().map(|(_, chunk)| chunk).collect())
        })
    }

    /// Newest-first chunks matching `filter`, a source's chunks of one
    /// timestamp in reading order (`seq_in_source` ascending); `limit` is
    /// clamped to 1..=[`MAX_LIST_LIMIT`]. Every filter runs in SQL before the
    /// limit.
    pub fn list_chunks(&self, filter: &ChunkFilter, limit: i64) -> Result<Vec<Chunk>> {
        self.list_chunks_after(filter, None, limit)
    }

    /// [`Store::list_chunks`] continued after `after` (see
    /// [`crate::chunks::paging`]).
    pub fn list_chunks_after(
        &self,
        filter: &ChunkFilter,
        after: Option<&ListCursor>,
        limit: i64,
    ) -> Result<Vec<Chunk>> {
        Ok(unpack_all(
            self.list_chunks_after_packed(filter, after, limit)?,
        ))
    }

    /// [`Store::list_chunks_after`], each chunk kept as its row's bytes.
    pub fn list_chunks_after_packed(
        &self,
        filter: &ChunkFilter,
        after: Option<&ListCursor>,
        limit: i64,
    ) -> Result<Vec<PackedChunk>> {
        let (sql, values) = list_query(filter, after, limit);
        // As get_chunks: a large limit that few rows meet must not reserve
        // a chunk per row it allows.
        let capacity = usize::try_from(limit.clamp(1, 1024)).unwrap_or(1);
        self.read("list_chunks", |conn| {
            Ok(read_packed(
                conn,
                &sql,
                params_from_iter(&values),
                capacity,
                |_, chunk| Ok(chunk),
            )?
            .rows)
        })
    }

    /// The plan SQLite picks for `list_chunks(filter)`, one line per step.
    pub fn explain_list_chunks(&self, filter: &ChunkFilter) -> Result<Vec<String>> {
        self.explain_list_chunks_after(filter, None)
    }

    /// The plan SQLite picks for `list_chunks(filter, after=…)`.
    pub fn explain_list_chunks_after(
        &self,
        filter: &ChunkFilter,
        after: Option<&ListCursor>,
    ) -> Result<Vec<String>> {
        let (sql, values) = list_query(filter, after, 100);
        self.read("explain list_chunks", |conn| {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let rows = stmt.query_map(params_from_iter(&values), |r| r.get::<_, String>(3))?;
            rows.collect()
        })
    }

    /// Number of chunks stored.
    pub fn count_chunks(&self) -> Result<i64> {
        self.read("count_chunks", |conn| {
            conn.query_row("SELECT count(*) FROM mem_tree_chunks", [], |r| r.get(0))
        })
    }

    /// A chunk's lifecycle status, or `None` if the chunk does not exist.
    pub fn lifecycle_status(&self, id: &str) -> Result<Option<String>> {
        self.read("lifecycle_status", |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT lifecycle_status FROM mem_tree_chunks WHERE id = ?1")?;
            let mut rows = stmt.query([id])?;
            rows.next()?.map(|r| r.get(0)).transpose()
        })
    }

    /// Sets the lifecycle status of `ids` in one transaction; returns how
    /// many rows exist and were updated.
    pub fn set_lifecycle_status(&self, ids: &[String], status: &str) -> Result<usize> {
        if status.is_empty() {
            return Err(Error::invalid("status", "must not be empty"));
        }
        self.write("set_lifecycle_status", |tx| {
            let mut stmt = tx
                .prepare_cached("UPDATE mem_tree_chunks SET lifecycle_status = ?1 WHERE id = ?2")?;
            let mut changed = 0;
            for id in ids {
                changed += stmt.execute(params![status, id])?;
            }
            Ok(changed)
        })
    }

    /// Chunk counts per lifecycle status.
    pub fn count_by_lifecycle_status(&self) -> Result<HashMap<String, i64>> {
        self.read("count_by_lifecycle_status", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT lifecycle_status, count(*) FROM mem_tree_chunks GROUP BY lifecycle_status",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// True when the source was claimed by [`Store::claim_source`].
    pub fn is_source_ingested(&self, kind: SourceKind, source_id: &str) -> Result<bool> {
        self.read("is_source_ingested", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT 1 FROM mem_tree_ingested_sources WHERE source_kind = ?1 AND source_id = ?2",
            )?;
            stmt.exists(params![kind.as_str(), source_id])
        })
    }

    /// The ingest gate: records the source as ingested and returns true, or
    /// returns false if it already was (so exactly one caller ingests it).
    pub fn claim_source(&self, kind: SourceKind, source_id: &str) -> Result<bool> {
        non_empty("source_id", source_id)?;
        self.write("claim_source", |tx| {
            claim_source_in(tx, kind, source_id, now_ms())
        })
    }

    /// Deletes a source's chunks, their score and entity-index rows, and its
    /// ingest-gate row, in one transaction; returns the chunks deleted.
    pub fn delete_source(&self, kind: SourceKind, source_id: &str) -> Result<usize> {
        self.write("delete_source", |tx| {
            let selector =
                "SELECT id FROM mem_tree_chunks WHERE source_kind = ?1 AND source_id = ?2";
            delete_dependents(tx, selector, params![kind.as_str(), source_id])?;
            tx.execute(
                "DELETE FROM mem_tree_ingested_sources WHERE source_kind = ?1 AND source_id = ?2",
                params![kind.as_str(), source_id],
            )?;
            tx.execute(
                "DELETE FROM mem_tree_chunks WHERE source_kind = ?1 AND source_id = ?2",
                params![kind.as_str(), source_id],
            )
        })
    }

    /// Deletes every chunk of `owner` with its score and entity-index rows.
    pub fn delete_owner(&self, owner: &str) -> Result<usize> {
        self.write("delete_owner", |tx| {
            delete_dependents(
                tx,
                "SELECT id FROM mem_tree_chunks WHERE owner = ?1",
                params![owner],
            )?;
            tx.execute(
                "DELETE FROM mem_tree_chunks WHERE owner = ?1",
                params![owner],
            )
        })
    }

    /// Makes `chunks` the whole content of one source, in one transaction:
    /// upserts them and removes the source's rows whose ids are not among them.
    pub fn replace_source_chunks<C: ChunkInput>(
        &self,
        kind: SourceKind,
        source_id: &str,
        chunks: &[C],
    ) -> Result<ReplaceOutcome> {
        non_empty("source_id", source_id)?;
        validate_all(chunks)?;
        for (i, c) in chunks.iter().enumerate() {
            let c = c.borrow();
            if c.source_kind != kind || c.source_id != source_id {
                return Err(Error::invalid(
                    format!("chunks[{i}]"),
                    format!(
                        "belongs to {}:{}, not to the source being replaced ({kind}:{source_id})",
                        c.source_kind, c.source_id
                    ),
                ));
            }
        }
        self.write("replace_source_chunks", |tx| {
            let upserted = upsert_in(tx, chunks)?;
            // The new id set goes into a temp table so the stale rows are found
            // by one set-based statement, whatever the batch size.
            tx.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS memtree_keep_ids (id TEXT PRIMARY KEY);
                 DELETE FROM temp.memtree_keep_ids;",
            )?;
            {
                let mut keep =
                    tx.prepare_cached("INSERT OR IGNORE INTO temp.memtree_keep_ids VALUES (?1)")?;
                for c in chunks {
                    keep.execute([&c.borrow().id])?;
                }
            }
            let selector =
                "SELECT id FROM mem_tree_chunks WHERE source_kind = ?1 AND source_id = ?2 \
                            AND id NOT IN (SELECT id FROM temp.memtree_keep_ids)";
            delete_dependents(tx, selector, params![kind.as_str(), source_id])?;
            let removed = tx.execute(
                "DELETE FROM mem_tree_chunks WHERE source_kind = ?1 AND source_id = ?2 \
                 AND id NOT IN (SELECT id FROM temp.memtree_keep_ids)",
                params![kind.as_str(), source_id],
            )?;
            tx.execute_batch("DELETE FROM temp.memtree_keep_ids;")?;
            Ok(ReplaceOutcome { upserted, removed })
        })
    }
}

/// The smallest batch [`upsert_in`] writes with one statement from the
/// batch's virtual table ([`crate::chunks::batch_rows`]) instead of a
/// statement per row. Preparing that statement costs tens of µs where the
/// per-row loop's cached statement is prepared already, and it saves ~1 µs a
/// row (measured on the release build, 10,000 rows), so below a few hundred
/// rows the cached statement is cheaper.
pub(crate) const BATCH_STATEMENT_MIN_ROWS: usize = 256;

/// Binds and runs memtree's upsert for every chunk inside `tx` (shared with
/// the benchmark loop, which times exactly this write path).
///
/// Chunks first try a plain `INSERT`: on memtree's schema SQLite spends about
/// a third less CPU per row on it than on `INSERT … ON CONFLICT DO UPDATE`
/// (stdlib `executemany` of 10,000 new rows: 124 vs 179 ms), and ingest is
/// mostly new ids. A plain insert that hits the primary key fails in its
/// constraint check, before any b-tree is written, and SQLite rolls back only
/// that statement; that chunk and every later one in the batch then take the
/// upsert, so a re-ingest pays for one failed insert at most and the result
/// is always exactly the upsert's.
///
/// A batch of [`BATCH_STATEMENT_MIN_ROWS`] or more is written instead by ONE
/// statement, [`UPSERT_ROWS_SQL`](crate::chunks::batch_rows::UPSERT_ROWS_SQL), reading the slice through
/// [`crate::chunks::batch_rows`] with its values lent: same rows, same conflict
/// rule, no statement per row. A statement that fails (a fault, a
/// constraint) is rolled back whole by SQLite, as a failing per-row step is.
///
/// Returns the number of chunks given, whatever the path: each was
/// inserted or had its ingest fields replaced (`changes()` would count an
/// upsert's update too, but not tell the two apart, and callers report
/// the batch's size).
pub(crate) fn upsert_in<C: Borrow<Chunk>>(
    tx: &Transaction<'_>,
    chunks: &[C],
) -> rusqlite::Result<usize> {
    if chunks.len() >= BATCH_STATEMENT_MIN_ROWS {
        crate::chunks::batch_rows::insert_all(
            tx,
            &crate::chunks::batch_rows::UPSERT_ROWS_SQL,
            chunks,
        )?;
        return Ok(chunks.len());
    }
    let mut rest = chunks;
    let mut scratch = Encoded::default();
    let mut insert = tx.prepare_cached(&INSERT_SQL)?;
    while let Some((c, tail)) = rest.split_first() {
        bind_chunk(&mut insert, c.borrow(), &mut scratch)?;
        match insert.raw_execute() {
            Ok(_) => rest = tail,
            Err(e) if is_primary_key_conflict(&e) => break,
            Err(e) => return Err(e),
        }
    }
    if !rest.is_empty() {
        let mut upsert = tx.prepare_cached(&UPSERT_SQL)?;
        for c in rest {
            bind_chunk(&mut upsert, c.borrow(), &mut scratch)?;
            upsert.raw_execute()?;
        }
    }
    Ok(chunks.len())
}

/// SQLITE_CONSTRAINT_PRIMARYKEY (1555), or SQLITE_CONSTRAINT_UNIQUE (2067)
/// which older releases report for the implicit index of a `TEXT PRIMARY KEY`.
fn is_primary_key_conflict(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == crate::error::codes::CONSTRAINT_PRIMARYKEY
                || f.extended_code == crate::error::codes::CONSTRAINT_UNIQUE
    )
}

/// Takes the ingest gate of one source inside `tx`: true when this call
/// recorded it, false when it was already taken.
pub(crate) fn claim_source_in(
    tx: &Transaction<'_>,
    kind: SourceKind,
    source_id: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    let mut gate = tx.prepare_cached(
        "INSERT OR IGNORE INTO mem_tree_ingested_sources \
         (source_kind, source_id, ingested_at_ms) VALUES (?1, ?2, ?3)",
    )?;
    Ok(gate.execute(params![kind.as_str(), source_id, now])? == 1)
}

/// Deletes score and entity-index rows of the chunks `selector` returns.
/// The reference links them by chunk id (`mem_tree_score.chunk_id`,
/// `mem_tree_entity_index.node_id`) without foreign keys, so the cascade is
/// done here, set-based.
pub(crate) fn delete_dependents(
    tx: &Transaction<'_>,
    selector: &str,
    params: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<()> {
    tx.execute(
        &format!("DELETE FROM mem_tree_score WHERE chunk_id IN ({selector})"),
        params,
    )?;
    tx.execute(
        &format!("DELETE FROM mem_tree_entity_index WHERE node_id IN ({selector})"),
        params,
    )?;
    Ok(())
}

/// A filter's terms on `mem_tree_chunks`: `WHERE` clauses joined by `AND`,
/// their parameters numbered from `?first` in the order of the values.
/// `list_chunks`, every search's pre-filter (`search::filter`) and the text
/// ranking's per-match check select rows through these same terms, so the
/// first two walk the same indexes.
pub(crate) fn filter_terms(filter: &ChunkFilter, first: usize) -> (Vec<String>, Vec<Value>) {
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    let mut add = |clause: &str, value: Value| {
        values.push(value);
        clauses.push(format!("{clause} ?{}", first + values.len() - 1));
    };
    // A source id pins a handful of rows, so with one the planner must walk
    // the source_id index: a unary `+` keeps the kind and owner terms off
    // every index (without statistics SQLite would rather take the owner's
    // index, which can hold every row), and they are checked per row.
    let pinned = if filter.source_id.is_some() { "+" } else { "" };
    if let Some(kind) = filter.source_kind {
        add(
            &format!("{pinned}source_kind ="),
            Value::Text(kind.as_str().to_owned()),
        );
    }
    if let Some(id) = &filter.source_id {
        add("source_id =", Value::Text(id.clone()));
    }
    if let Some(owner) = &filter.owner {
        add(&format!("{pinned}owner ="), Value::Text(owner.clone()));
    }
    if let Some(since) = filter.since_ms {
        add("timestamp_ms >=", Value::Integer(since));
    }
    if let Some(until) = filter.until_ms {
        add("timestamp_ms <", Value::Integer(until));
    }
    (clauses, values)
}

/// Builds the `list_chunks` statement: only the filters given, all in SQL,
/// ordered `timestamp_ms DESC, seq_in_source ASC, id ASC` (the reference's
/// order: a document's chunks share a timestamp and read in sequence; the
/// id makes it total, so a cursor pages exactly). Each indexed equality
/// filter set has a `(key…, timestamp_ms, seq_in_source DESC, id DESC)`
/// index that SQLite walks backwards, so the order costs no temporary sort
/// (see `schema::apply_total_list_order_indexes`).
fn list_query(
    filter: &ChunkFilter,
    after: Option<&ListCursor>,
    limit: i64,
) -> (String, Vec<Value>) {
    let (mut clauses, mut values) = filter_terms(filter, 1);
    if let Some(cursor) = after {
        let (clause, cursor_values) = cursor.clause(values.len() + 1);
        clauses.push(clause);
        values.extend(cursor_values);
    }
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    values.push(Value::Integer(limit.clamp(1, MAX_LIST_LIMIT)));
    let sql = format!(
        "{}{where_clause} ORDER BY timestamp_ms DESC, seq_in_source ASC, id ASC LIMIT ?{}",
        *SELECT_SQL,
        values.len()
    );
    (sql, values)
}

/// The rows of a chunk read, each packed as it is stepped to
/// ([`PackedChunk`]) and passed with its row to `keep`.
struct PackedRows<T> {
    rows: Vec<T>,
    /// How many rows were read straight through SQLite's value API
    /// ([`RowPacker`]) rather than through rusqlite.
    #[cfg_attr(not(test), allow(dead_code))]
    read_raw: usize,
}

/// Runs `sql`, whose first columns are [`CHUNK_COLUMNS`], and packs every
/// row: its values are read straight through SQLite's value API
/// ([`RowPacker`]; rusqlite's reads when the running statement is not
/// found). A row [`PackedChunk`] refuses is decoded by
/// [`chunk_from_row`], so the read fails with that row's usual error.
fn read_packed<T, P: rusqlite::Params>(
    conn: &rusqlite::Connection,
    sql: &str,
    params: P,
    capacity: usize,
    mut keep: impl FnMut(&rusqlite::Row<'_>, PackedChunk) -> rusqlite::Result<T>,
) -> rusqlite::Result<PackedRows<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut found = PackedRows {
        rows: Vec::with_capacity(capacity),
        read_raw: 0,
    };
    let mut packer = RowPacker::new(conn, sql);
    while let Some(row) = rows.next()? {
        let chunk = packer.pack(row, PackedChunk::from_values, |row| {
            PackedChunk::from_chunk(&chunk_from_row(row)?)
        })?;
        found.rows.push(keep(row, chunk)?);
    }
    found.read_raw = packer.read_raw;
    Ok(found)
}

/// Packed chunks decoded, for the callers that want [`Chunk`]s.
fn unpack_all(packed: Vec<PackedChunk>) -> Vec<Chunk> {
    packed.iter().map(Unpack::unpack).collect()
}

/// Checks every chunk of a batch, naming the bad one (`chunks[3].id`);
/// nothing to do for chunks checked when they were built.
pub(crate) fn validate_all<C: ChunkInput>(chunks: &[C]) -> Result<()> {
    if C::PREVALIDATED {
        return Ok(());
    }
    chunks
        .iter()
        .enumerate()
        .try_for_each(|(i, c)| c.borrow().validate(&format!("chunks[{i}].")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A chunk with no optional field set, every time at `ts`: a test sets
    /// the fields it varies with `..plain_chunk(id, ts)`.
    pub(crate) fn plain_chunk(id: &str, ts: i64) -> Chunk {
        Chunk {
            id: id.into(),
            content: "c".into(),
            source_kind: SourceKind::Chat,
            source_id: "s".into(),
            source_ref: None,
            owner: "o".into(),
            timestamp_ms: ts,
            time_range_start_ms: ts,
            time_range_end_ms: ts,
            tags: vec![],
            token_count: 1,
            seq_in_source: 0,
            created_at_ms: ts,
            lifecycle_status: "admitted".into(),
            embedding: None,
            content_path: None,
            content_sha256: None,
        }
    }

    /// A chunk with every optional field set, so no column may bind NULL.
    pub(crate) fn full_chunk() -> Chunk {
        Chunk {
            id: "c1".into(),
            content: "hello".into(),
            source_kind: SourceKind::Email,
            source_id: "s1".into(),
            source_ref: Some("msg-1".into()),
            owner: "alice".into(),
            timestamp_ms: 20,
            time_range_start_ms: 10,
            time_range_end_ms: 30,
            tags: vec!["a".into(), "b".into()],
            token_count: 2,
            seq_in_source: 3,
            created_at_ms: 40,
            lifecycle_status: "sealed".into(),
            embedding: Some(vec![0.5, -1.0]),
            content_path: Some("bodies/c1.txt".into()),
            content_sha256: Some("ab".repeat(32)),
        }
    }

    #[test]
    fn a_chunk_round_trips_through_insert_upsert_and_select() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("tempdir", std::path::Path::new("."), e))?;
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        let mut chunk = full_chunk();
        store.upsert_chunks(&[&chunk])?;
        assert_eq!(store.get_chunk("c1")?.as_ref(), Some(&chunk));
        // The same id again takes the upsert path: every ingest field is
        // replaced, the derived state (embedding, lifecycle status) is kept.
        let stored = chunk.clone();
        chunk.content = "changed".into();
        chunk.source_ref = None;
        chunk.tags.clear();
        chunk.embedding = None;
        chunk.lifecycle_status = "admitted".into();
        store.upsert_chunks(&[&chunk])?;
        chunk.embedding = stored.embedding;
        chunk.lifecycle_status = stored.lifecycle_status;
        assert_eq!(store.get_chunks(&["c1".into()])?, vec![chunk.clone()]);
        assert_eq!(store.list_chunks(&ChunkFilter::default(), 10)?, vec![chunk]);
        Ok(())
    }

    /// `n` chunks `c0000`, `c0001`, … with every kind of value among them:
    /// set and unset options, an empty and a non-ASCII text, no tags, an
    /// embedding and none.
    pub(crate) fn varied_chunks(n: usize) -> Vec<Chunk> {
        (0..n)
            .map(|i| {
                let mut c = Chunk {
                    id: format!("c{i:04}"),
                    content: format!("ünï {i}"),
                    ..full_chunk()
                };
                if i % 2 == 1 {
                    // NULLs and empty strings both bind (an empty owner is
                    // refused by validation, so the empty text is a ref).
                    c.source_ref = (i % 4 == 3).then(String::new);
                    c.content_path = None;
                    c.content_sha256 = None;
                    c.embedding = None;
                    c.tags.clear();
                    c.owner = "ö".into();
                }
                c
            })
            .collect()
    }

    #[test]
    fn a_batch_binds_lent_values_and_round_trips() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("tempdir", std::path::Path::new("."), e))?;
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        // Enough chunks for the one-statement path.
        let chunks = varied_chunks(BATCH_STATEMENT_MIN_ROWS * 2);
        assert_eq!(store.upsert_chunks(&chunks)?, chunks.len());
        let ids: Vec<String> = chunks.iter().map(|c| c.id.clone()).collect();
        assert_eq!(store.get_chunks(&ids)?, chunks);
        Ok(())
    }

    /// Every column of every row, by id (the derived columns no chunk
    /// field writes included).
    fn every_row(store: &Store) -> Result<Vec<Vec<Value>>> {
        store.read("rows", |conn| {
            let mut stmt = conn.prepare("SELECT * FROM mem_tree_chunks ORDER BY id")?;
            let n = stmt.column_count();
            let rows = stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect())?;
            rows.collect()
        })
    }

    /// Sets the derived columns no chunk field writes on every row.
    fn derive_all(store: &Store) -> Result<()> {
        store.write("derive", |tx| {
            tx.execute_batch(
                "UPDATE mem_tree_chunks SET raw_refs_json = '[]', parent_summary_id = 's-' || id, \
                 lifecycle_status = 'sealed', embedding = x'0000803f', \
                 content_path = 'p/' || id, content_sha256 = 'h'",
            )
        })
    }

    /// The same batches through the one-statement path (store `a`) and
    /// through the per-row path in slices below the threshold (store `b`)
    /// leave every column of every row equal: new rows, an id repeated in
    /// the batch (the later row's ingest fields win, the first row's derived
    /// state stays), a re-ingest over derived state, mixed new and existing.
    #[test]
    fn a_large_batch_ends_as_the_per_row_path_does() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("tempdir", std::path::Path::new("."), e))?;
        let (a, _) = Store::open_file(&dir.path().join("a.db"))?;
        let (b, _) = Store::open_file(&dir.path().join("b.db"))?;
        let per_row = |chunks: &[Chunk]| -> Result<()> {
            for part in chunks.chunks(BATCH_STATEMENT_MIN_ROWS - 1) {
                assert_eq!(b.upsert_chunks(part)?, part.len());
            }
            Ok(())
        };
        let mut first = varied_chunks(BATCH_STATEMENT_MIN_ROWS + 40);
        // A duplicate inside the batch: different ingest fields and derived
        // state; the later row's ingest fields must win.
        first.push(Chunk {
            content: "later".into(),
            lifecycle_status: "other".into(),
            embedding: Some(vec![9.0]),
            ..first[3].clone()
        });
        assert_eq!(a.upsert_chunks(&first)?, first.len());
        per_row(&first)?;
        assert_eq!(every_row(&a)?, every_row(&b)?);
        assert_eq!(
            a.get_chunk("c0003")?
                .map(|c| (c.content, c.lifecycle_status)),
            Some(("later".into(), "sealed".into()))
        );
        // Re-ingest of existing ids over derived state, mixed with new ids,
        // as Prevalidated references.
        derive_all(&a)?;
        derive_all(&b)?;
        let second: Vec<Chunk> = (100..BATCH_STATEMENT_MIN_ROWS + 200)
            .map(|i| Chunk {
                id: format!("c{i:04}"),
                content: format!("again {i}"),
                lifecycle_status: "admitted".into(),
                embedding: None,
                ..full_chunk()
            })
            .collect();
        let vouched: Vec<Prevalidated<'_>> = second.iter().map(Prevalidated::vouch).collect();
        assert_eq!(a.upsert_chunks(&vouched)?, second.len());
        per_row(&second)?;
        let rows = every_row(&a)?;
        assert_eq!(rows, every_row(&b)?);
        assert_eq!(rows.len(), BATCH_STATEMENT_MIN_ROWS + 200);
        let kept = a.get_chunk("c0150")?.expect("stored");
        assert_eq!(
            (kept.content.as_str(), kept.lifecycle_status.as_str()),
            ("again 150", "sealed")
        );
        assert_eq!(kept.embedding, Some(vec![1.0]));
        Ok(())
    }

    /// The threshold is where the path changes: with the connection marked
    /// as having the batch table that it lacks, one chunk fewer than
    /// [`BATCH_STATEMENT_MIN_ROWS`] still writes (per-row), the threshold fails
    /// on the missing table, and the failed statement leaves nothing.
    #[test]
    fn batches_from_the_threshold_take_the_one_statement_path() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("tempdir", std::path::Path::new("."), e))?;
        let (store, _) = Store::open_file(&dir.path().join("a.db"))?;
        store.read("mark the table registered without it", |conn| {
            let key = crate::chunks::batch_rows::REGISTERED_KEY;
            // SAFETY: a live handle on this thread; the marker is a static.
            let rc = unsafe {
                rusqlite::ffi::sqlite3_set_clientdata(
                    conn.handle(),
                    key.as_ptr(),
                    key.as_ptr().cast_mut().cast(),
                    None,
                )
            };
            assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
            Ok(())
        })?;
        let chunks: Vec<Chunk> = (0..BATCH_STATEMENT_MIN_ROWS)
            .map(|i| Chunk {
                id: format!("c{i}"),
                ..full_chunk()
            })
            .collect();
        let err = store.upsert_chunks(&chunks).unwrap_err();
        assert!(err.to_string().contains("memtree_batch_rows"), "{err}");
        assert_eq!(store.count_chunks()?, 0);
        let below = &chunks[1..];
        assert_eq!(store.upsert_chunks(below)?, below.len());
        assert_eq!(store.count_chunks()?, below.len() as i64);
        Ok(())
    }

    #[test]
    fn an_empty_upsert_opens_no_transaction() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("tempdir", std::path::Path::new("."), e))?;
        let (store, _) = Store::open_file(&dir.path().join("a.db"))?;
        let none: [Chunk; 0] = [];
        assert_eq!(store.upsert_chunks(&none)?, 0);
        let stats = crate::db::connection::group_stats(store.path())?;
        assert_eq!((stats.commits, stats.committed_calls), (0, 0));
        store.upsert_chunks(&[full_chunk()])?;
        let stats = crate::db::connection::group_stats(store.path())?;
        assert_eq!(stats.committed_calls, 1, "the counter counts a real upsert");
        store.close();
        assert!(matches!(store.upsert_chunks(&none), Err(Error::Closed)));
        Ok(())
    }

    #[test]
    fn an_invalid_chunk_in_a_large_batch_writes_nothing() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("tempdir", std::path::Path::new("."), e))?;
        let path = dir.path().join("a.db");
        let (store, _) = Store::open_file(&path)?;
        let mut chunks: Vec<Chunk> = (0..BATCH_STATEMENT_MIN_ROWS * 2)
            .map(|i| Chunk {
                id: format!("c{i}"),
                ..full_chunk()
            })
            .collect();
        chunks[BATCH_STATEMENT_MIN_ROWS + 7].token_count = -1;
        let before = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        let err = store.upsert_chunks(&chunks).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
        assert!(err.to_string().contains("chunks[263]"), "{err}");
        assert_eq!(
            std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?,
            before
        );
        assert_eq!(store.count_chunks()?, 0);
        Ok(())
    }

    #[test]
    fn get_chunks_is_one_statement_in_the_order_asked() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("tempdir", std::path::Path::new("."), e))?;
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        // Ids JSON must escape (quote, backslash, NUL, non-ASCII) and one
        // that looks like a number: each must come back as itself.
        let odd = ["a\"b", "back\\slash", "nul\0byte", "ünï", "12"];
        let chunks: Vec<Chunk> = odd
            .iter()
            .map(|id| Chunk {
                id: (*id).into(),
                ..full_chunk()
            })
            .collect();
        store.upsert_chunks(&chunks)?;
        let ask: Vec<String> = ["12", "missing", "nul\0byte", "a\"b", "12", "ünï"]
            .iter()
            .map(|s| (*s).into())
            .collect();
        let got: Vec<String> = store.get_chunks(&ask)?.into_iter().map(|c| c.id).collect();
        assert_eq!(got, ["12", "nul\0byte", "a\"b", "12", "ünï"]);
        assert_eq!(store.get_chunks(&[])?, Vec::<Chunk>::new());
        assert_eq!(store.get_chunks(&["nope".into()])?, Vec::<Chunk>::new());
        // Each element is one index search: the chunks table is never scanned.
        let plan: Vec<String> = store.read("plan", |conn| {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", *GET_MANY_SQL))?;
            let rows = stmt.query_map(["[]"], |r| r.get::<_, String>(3))?;
            rows.collect()
        })?;
        assert!(
            plan.iter().any(|p| p.starts_with("SEARCH c USING INDEX")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|p| p.contains("SCAN c")), "{plan:?}");
        Ok(())
    }

    #[test]
    fn get_chunks_takes_more_ids_than_sqlite_has_variables() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("tempdir", std::path::Path::new("."), e))?;
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        let chunks: Vec<Chunk> = (0..50)
            .map(|i| Chunk {
                id: format!("c{i}"),
                ..full_chunk()
            })
            .collect();
        store.upsert_chunks(&chunks)?;
        // 40,000 ids (past SQLite's 32,766 variables), reversed, each stored
        // id asked twice among misses.
        let ask: Vec<String> = (0..40_000)
            .rev()
            .map(|i| format!("c{}", i % 20_000))
            .collect();
        let got: Vec<String> = store.get_chunks(&ask)?.into_iter().map(|c| c.id).collect();
        let want: Vec<String> = ask
            .iter()
            .filter(|id| id[1..].parse::<u32>().is_ok_and(|n| n < 50))
            .cloned()
            .collect();
        assert_eq!(want.len(), 100);
        assert_eq!(got, want);
        Ok(())
    }

    #[test]
    fn validation_runs_once_per_call() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("tempdir", std::path::Path::new("."), e))?;
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        // A token count SQLite would store but memtree refuses: a plain
        // reference is checked by the store ...
        let mut odd = full_chunk();
        odd.token_count = -1;
        assert!(matches!(
            store.upsert_chunks(&[&odd]),
            Err(Error::InvalidInput { .. })
        ));
        // ... a vouched one is not checked again (the glue vouches only for
        // chunks its constructor validated), which the write proves.
        assert_eq!(store.upsert_chunks(&[Prevalidated::vouch(&odd)])?, 1);
        Ok(())
    }

    /// The bulk reads pack every row straight from SQLite's values (the
    /// running statement is found), unpack to exactly what `get_chunk`
    /// decodes, and fail on a row memtree cannot read with `get_chunk`'s
    /// own error.
    #[test]
    fn bulk_reads_pack_each_row_from_sqlites_values() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("tempdir", std::path::Path::new("."), e))?;
        let (store, _) = Store::open_file(&dir.path().join("a.db"))?;
        let chunks: Vec<Chunk> = (0..5)
            .map(|i| Chunk {
                id: format!("c{i}"),
                timestamp_ms: i,
                ..full_chunk()
            })
            .collect();
        store.upsert_chunks(&chunks)?;
        let ids: Vec<String> = chunks.iter().map(|c| c.id.clone()).collect();
        let ids_json = serde_json::to_string(&ids).expect("strings serialise");
        let (sql, values) = list_query(&ChunkFilter::default(), None, 100);
        let (by_id, listed) = store.read("read packed", |conn| {
            let by_id = read_packed(conn, &GET_MANY_SQL, [&ids_json], 0, |_, c| Ok(c))?;
            let listed = read_packed(conn, &sql, params_from_iter(&values), 0, |_, c| Ok(c))?;
            Ok((by_id, listed))
        })?;
        assert_eq!((by_id.read_raw, listed.read_raw), (5, 5));
        for packed in by_id.rows.iter().chain(&listed.rows) {
            assert_eq!(Some(packed.unpack()), store.get_chunk(packed.id())?);
        }
        assert_eq!(store.get_chunks(&ids)?, chunks);
        let mut newest_first = chunks.clone();
        newest_first.reverse();
        assert_eq!(
            store.list_chunks(&ChunkFilter::default(), 100)?,
            newest_first
        );

        // A row the packer refuses is decoded for its error, the one
        // `get_chunk` raises.
        store.write("corrupt", |tx| {
            tx.execute(
                "UPDATE mem_tree_chunks SET tags_json = '{' WHERE id = 'c2'",
                [],
            )
        })?;
        let want = store.get_chunk("c2").unwrap_err().to_string();
        let want = want.strip_prefix("get_chunk: ").expect("named by its call");
        let bulk = [
            ("get_chunks", store.get_chunks(&ids).map(drop)),
            (
                "list_chunks",
                store.list_chunks(&ChunkFilter::default(), 100).map(drop),
            ),
        ];
        for (call, got) in bulk {
            assert_eq!(got.unwrap_err().to_string(), format!("{call}: {want}"));
        }
        Ok(())
    }
}
