//! Chunk operations on an open database: upsert, reads, filtered listing,
//! lifecycle status, the ingest gate and set-based deletion.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row, Transaction, TransactionBehavior};

use crate::chunk::{embedding_from_blob, embedding_to_blob, Chunk, SourceKind};
use crate::classify::ErrorClass;
use crate::connection::{self, Database, OpenOutcome};
use crate::error::{Error, Result};

/// The most rows one `list_chunks` call returns.
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

/// A handle on one database file. Handles on the same file share one
/// connection; closing a handle releases it, and the connection closes with
/// the last handle.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    db: RwLock<Option<Arc<Database>>>,
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

const CHUNK_COLUMNS: &str =
    "id, content, source_kind, source_id, source_ref, owner, timestamp_ms, \
     time_range_start_ms, time_range_end_ms, tags_json, token_count, seq_in_source, \
     created_at_ms, lifecycle_status, embedding";

/// The plain insert of one chunk; a macro so [`INSERT_SQL`] and
/// [`UPSERT_SQL`] are built from one literal at compile time.
macro_rules! insert_chunk_sql {
    () => {
        "INSERT INTO mem_tree_chunks (id, content, source_kind, source_id, \
         source_ref, owner, timestamp_ms, time_range_start_ms, time_range_end_ms, tags_json, \
         token_count, seq_in_source, created_at_ms, lifecycle_status, embedding) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    };
}

/// The fast path for new ids: [`UPSERT_SQL`] without its conflict clause.
const INSERT_SQL: &str = insert_chunk_sql!();

/// The store's upsert of one chunk.
pub(crate) const UPSERT_SQL: &str = concat!(
    insert_chunk_sql!(),
    " ON CONFLICT(id) DO UPDATE SET content = excluded.content, \
     source_kind = excluded.source_kind, source_id = excluded.source_id, \
     source_ref = excluded.source_ref, owner = excluded.owner, \
     timestamp_ms = excluded.timestamp_ms, time_range_start_ms = excluded.time_range_start_ms, \
     time_range_end_ms = excluded.time_range_end_ms, tags_json = excluded.tags_json, \
     token_count = excluded.token_count, seq_in_source = excluded.seq_in_source, \
     created_at_ms = excluded.created_at_ms, lifecycle_status = excluded.lifecycle_status, \
     embedding = excluded.embedding"
);

impl Store {
    /// Opens (or joins) the store at an explicit database file.
    pub fn open(path: &Path) -> Result<(Store, Option<String>)> {
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
        Store::open(&dir.join("chunks.db"))
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
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let db = self.database()?;
        db.with_conn(|conn| f(conn).map_err(db.err(context)))
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

    /// Inserts or replaces `chunks` in one transaction; returns how many.
    /// Takes owned chunks or references, so callers need not copy them.
    pub fn upsert_chunks<C: Borrow<Chunk>>(&self, chunks: &[C]) -> Result<usize> {
        validate_all(chunks)?;
        self.write("upsert_chunks", |tx| upsert_in(tx, chunks))
    }

    /// One chunk by id.
    pub fn get_chunk(&self, id: &str) -> Result<Option<Chunk>> {
        self.read("get_chunk", |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {CHUNK_COLUMNS} FROM mem_tree_chunks WHERE id = ?1"
            ))?;
            let mut rows = stmt.query([id])?;
            rows.next()?.map(chunk_from_row).transpose()
        })
    }

    /// The chunks with these ids, in the order asked; missing ids are skipped.
    pub fn get_chunks(&self, ids: &[String]) -> Result<Vec<Chunk>> {
        self.read("get_chunks", |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {CHUNK_COLUMNS} FROM mem_tree_chunks WHERE id = ?1"
            ))?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let mut rows = stmt.query([id])?;
                if let Some(row) = rows.next()? {
                    out.push(chunk_from_row(row)?);
                }
            }
            Ok(out)
        })
    }

    /// Newest-first chunks matching `filter`; `limit` is clamped to
    /// 1..=[`MAX_LIST_LIMIT`]. Every filter runs in SQL before the limit.
    pub fn list_chunks(&self, filter: &ChunkFilter, limit: i64) -> Result<Vec<Chunk>> {
        let (sql, values) = list_query(filter, limit);
        self.read("list_chunks", |conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(values), chunk_from_row)?;
            rows.collect()
        })
    }

    /// The plan SQLite picks for `list_chunks(filter)`, one line per step.
    pub fn explain_list_chunks(&self, filter: &ChunkFilter) -> Result<Vec<String>> {
        let (sql, values) = list_query(filter, 100);
        self.read("explain list_chunks", |conn| {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let rows = stmt.query_map(params_from_iter(values), |r| r.get::<_, String>(3))?;
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
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO mem_tree_ingested_sources \
                 (source_kind, source_id, ingested_at_ms) VALUES (?1, ?2, ?3)",
                params![kind.as_str(), source_id, now_ms()],
            )?;
            Ok(inserted == 1)
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
    pub fn replace_source_chunks<C: Borrow<Chunk>>(
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

    /// Runs `PRAGMA quick_check` (or `integrity_check` when `quick` is
    /// false); returns `["ok"]` for a healthy file. A corrupt file (a failed
    /// check, or CORRUPT / NOTADB while checking) is quarantined — moved aside
    /// with its side files, replaced by a fresh database for every handle —
    /// and reported as [`Error::Quarantined`].
    pub fn check(&self, quick: bool) -> Result<Vec<String>> {
        let pragma = if quick {
            "quick_check"
        } else {
            "integrity_check"
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

pub(crate) fn non_empty(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    Ok(())
}

pub(crate) fn validate_all<C: Borrow<Chunk>>(chunks: &[C]) -> Result<()> {
    chunks
        .iter()
        .enumerate()
        .try_for_each(|(i, c)| c.borrow().validate(&format!("chunks[{i}].")))
}

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
pub(crate) fn upsert_in<C: Borrow<Chunk>>(
    tx: &Transaction<'_>,
    chunks: &[C],
) -> rusqlite::Result<usize> {
    let mut rest = chunks;
    {
        let mut insert = tx.prepare_cached(INSERT_SQL)?;
        while let Some((c, tail)) = rest.split_first() {
            bind_chunk(&mut insert, c.borrow())?;
            match insert.raw_execute() {
                Ok(_) => rest = tail,
                Err(e) if is_primary_key_conflict(&e) => break,
                Err(e) => return Err(e),
            }
        }
    }
    if !rest.is_empty() {
        let mut upsert = tx.prepare_cached(UPSERT_SQL)?;
        for c in rest {
            bind_chunk(&mut upsert, c.borrow())?;
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
            if f.extended_code == crate::codes::CONSTRAINT_PRIMARYKEY
                || f.extended_code == crate::codes::CONSTRAINT_UNIQUE
    )
}

/// Binds one chunk's 15 values to the upsert's (or insert's) parameters.
fn bind_chunk(stmt: &mut rusqlite::CachedStatement<'_>, c: &Chunk) -> rusqlite::Result<()> {
    let tags = serde_json::to_string(&c.tags)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    stmt.raw_bind_parameter(1, &c.id)?;
    stmt.raw_bind_parameter(2, &c.content)?;
    stmt.raw_bind_parameter(3, c.source_kind.as_str())?;
    stmt.raw_bind_parameter(4, &c.source_id)?;
    stmt.raw_bind_parameter(5, &c.source_ref)?;
    stmt.raw_bind_parameter(6, &c.owner)?;
    stmt.raw_bind_parameter(7, c.timestamp_ms)?;
    stmt.raw_bind_parameter(8, c.time_range_start_ms)?;
    stmt.raw_bind_parameter(9, c.time_range_end_ms)?;
    stmt.raw_bind_parameter(10, tags)?;
    stmt.raw_bind_parameter(11, c.token_count)?;
    stmt.raw_bind_parameter(12, c.seq_in_source)?;
    stmt.raw_bind_parameter(13, c.created_at_ms)?;
    stmt.raw_bind_parameter(14, &c.lifecycle_status)?;
    stmt.raw_bind_parameter(15, c.embedding.as_deref().map(embedding_to_blob))?;
    Ok(())
}

/// Deletes score and entity-index rows of the chunks `selector` returns.
/// The reference links them by chunk id (`mem_tree_score.chunk_id`,
/// `mem_tree_entity_index.node_id`) without foreign keys, so the cascade is
/// done here, set-based.
fn delete_dependents(
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

/// Builds the `list_chunks` statement: only the filters given, all in SQL,
/// ordered so one of the `(key, timestamp_ms)` indexes serves it without a
/// temporary sort (ties by rowid, which every index carries).
fn list_query(filter: &ChunkFilter, limit: i64) -> (String, Vec<Value>) {
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    let mut add = |clause: &str, value: Value| {
        values.push(value);
        clauses.push(format!("{clause} ?{}", values.len()));
    };
    if let Some(kind) = filter.source_kind {
        add("source_kind =", Value::Text(kind.as_str().to_owned()));
    }
    if let Some(id) = &filter.source_id {
        add("source_id =", Value::Text(id.clone()));
    }
    if let Some(owner) = &filter.owner {
        add("owner =", Value::Text(owner.clone()));
    }
    if let Some(since) = filter.since_ms {
        add("timestamp_ms >=", Value::Integer(since));
    }
    if let Some(until) = filter.until_ms {
        add("timestamp_ms <", Value::Integer(until));
    }
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    values.push(Value::Integer(limit.clamp(1, MAX_LIST_LIMIT)));
    let sql = format!(
        "SELECT {CHUNK_COLUMNS} FROM mem_tree_chunks{where_clause} \
         ORDER BY timestamp_ms DESC, rowid DESC LIMIT ?{}",
        values.len()
    );
    (sql, values)
}

fn chunk_from_row(row: &Row<'_>) -> rusqlite::Result<Chunk> {
    let kind: String = row.get(2)?;
    let source_kind = kind.parse().map_err(|()| {
        rusqlite::Error::FromSqlConversionFailure(
            2,
            rusqlite::types::Type::Text,
            format!("unknown source_kind {kind:?}").into(),
        )
    })?;
    let tags_json: String = row.get(9)?;
    let tags = serde_json::from_str(&tags_json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(9, rusqlite::types::Type::Text, e.into())
    })?;
    let embedding = match row.get_ref(14)?.as_blob_or_null()? {
        None => None,
        Some(blob) => Some(embedding_from_blob(blob).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                14,
                rusqlite::types::Type::Blob,
                format!(
                    "embedding blob of {} bytes is not a float32 vector",
                    blob.len()
                )
                .into(),
            )
        })?),
    };
    Ok(Chunk {
        id: row.get(0)?,
        content: row.get(1)?,
        source_kind,
        source_id: row.get(3)?,
        source_ref: row.get(4)?,
        owner: row.get(5)?,
        timestamp_ms: row.get(6)?,
        time_range_start_ms: row.get(7)?,
        time_range_end_ms: row.get(8)?,
        tags,
        token_count: row.get(10)?,
        seq_in_source: row.get(11)?,
        created_at_ms: row.get(12)?,
        lifecycle_status: row.get(13)?,
        embedding,
    })
}
