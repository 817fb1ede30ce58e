//! Chunk-level deletion and the per-source overview: `delete_chunk` and
//! `list_sources`.

use rusqlite::params;

use crate::chunks::ops::delete_dependents;
use crate::chunks::record::{non_empty, SourceKind};
use crate::db::store::Store;
use crate::error::Result;

/// What one source contributed to the store (one row of [`Store::list_sources`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// The source's kind.
    pub source_kind: SourceKind,
    /// The source's id within its kind.
    pub source_id: String,
    /// How many chunks it has.
    pub chunk_count: i64,
    /// The sum of their token counts.
    pub token_total: i64,
    /// The smallest `timestamp_ms` among them.
    pub oldest_ms: i64,
    /// The largest `timestamp_ms` among them.
    pub newest_ms: i64,
}

/// `list_sources`' statement. Grouping by the leading columns of the
/// reference's `(source_kind, source_id, seq_in_source)` index lets SQLite
/// walk that index in order and aggregate as it goes: no temporary B-tree,
/// no sort of the chunk table.
pub(crate) const LIST_SOURCES_SQL: &str = "\
    SELECT source_kind, source_id, COUNT(*), COALESCE(SUM(token_count), 0), \
           MIN(timestamp_ms), MAX(timestamp_ms) \
    FROM mem_tree_chunks \
    GROUP BY source_kind, source_id \
    ORDER BY source_kind, source_id";

impl Store {
    /// Deletes one chunk with its score and entity-index rows, in one
    /// transaction; returns whether it existed. Deleting a missing id is a
    /// no-op (`false`), so a retry is harmless.
    pub fn delete_chunk(&self, id: &str) -> Result<bool> {
        non_empty("id", id)?;
        self.write("delete_chunk", |tx| {
            // The same cascade as `delete_source`, for one id.
            delete_dependents(tx, "SELECT ?1", params![id])?;
            let deleted = tx.execute("DELETE FROM mem_tree_chunks WHERE id = ?1", params![id])?;
            Ok(deleted == 1)
        })
    }

    /// One [`SourceInfo`] per source with chunks, ordered by kind and id.
    pub fn list_sources(&self) -> Result<Vec<SourceInfo>> {
        self.read("list_sources", |conn| {
            let mut stmt = conn.prepare_cached(LIST_SOURCES_SQL)?;
            let rows = stmt.query_map([], |r| {
                let kind: String = r.get(0)?;
                let source_kind = kind.parse().map_err(|()| {
                    rusqlite::Error::FromSqlConversionFailure(
                        0,
                        rusqlite::types::Type::Text,
                        format!("unknown source_kind {kind:?}").into(),
                    )
                })?;
                Ok(SourceInfo {
                    source_kind,
                    source_id: r.get(1)?,
                    chunk_count: r.get(2)?,
                    token_total: r.get(3)?,
                    oldest_ms: r.get(4)?,
                    newest_ms: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The query plan of [`Store::list_sources`] (for tests and tuning).
    pub fn explain_list_sources(&self) -> Result<Vec<String>> {
        self.read("explain_list_sources", |conn| {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {LIST_SOURCES_SQL}"))?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(3))?;
            rows.collect()
        })
    }
}
