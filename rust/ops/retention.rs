//! Retention: `delete_chunks` deletes the chunks older than a cutoff (and
//! matching the list filters) in many bounded transactions, with the
//! cascade of `delete_source` (their score and entity-index rows), so a
//! store kept for years can drop old memory without holding the write lock
//! for the whole deletion.
//!
//! - A chunk's age is its `timestamp_ms`; a chunk at or after the cutoff is
//!   kept.
//! - Each transaction takes up to [`BATCH`] matching ids into a temporary
//!   table and deletes their dependents and the chunks by those ids, so the
//!   cascade and the delete name the same rows.
//! - The ingest-gate rows (`mem_tree_ingested_sources`) stay: a source whose
//!   old chunks were dropped is not ingested again by the gate.
//! - Content files named by content pointers are not removed here; owner
//!   erasure ([`crate::ops::erase`]) removes them.

use rusqlite::types::Value;

use crate::chunks::{ops::delete_dependents, ChunkFilter};
use crate::db::store::Store;
use crate::error::Result;

/// Chunks deleted per transaction.
pub const BATCH: i64 = 500;

/// Deletes the chunks matching `filter` whose timestamp is before
/// `cutoff_ms`, in transactions of at most [`BATCH`] chunks; returns how
/// many.
pub fn delete_chunks(store: &Store, cutoff_ms: i64, filter: &ChunkFilter) -> Result<usize> {
    crate::chunks::record::check_time_ms("older_than", cutoff_ms)?;
    let until = filter.until_ms.map_or(cutoff_ms, |u| u.min(cutoff_ms));
    let mut clauses = vec!["timestamp_ms < ?1".to_owned()];
    let mut values: Vec<Value> = vec![until.into()];
    let mut add = |clause: &str, value: Value| {
        values.push(value);
        clauses.push(format!("{clause} ?{}", values.len()));
    };
    if let Some(kind) = filter.source_kind {
        add("source_kind =", kind.as_str().to_owned().into());
    }
    if let Some(id) = &filter.source_id {
        add("source_id =", id.clone().into());
    }
    if let Some(owner) = &filter.owner {
        add("owner =", owner.clone().into());
    }
    if let Some(since) = filter.since_ms {
        add("timestamp_ms >=", since.into());
    }
    let pick = format!(
        "INSERT INTO temp.memtree_retention_ids (id) SELECT id FROM mem_tree_chunks \
         WHERE {} LIMIT {BATCH}",
        clauses.join(" AND ")
    );
    let mut total = 0;
    loop {
        let deleted = store.write("delete_chunks", |tx| {
            // Emptied once, here, at the start of each batch: whatever the
            // last batch (or an earlier call) left on this connection, the
            // ids taken below are this batch's alone. The table is in the
            // transaction like the rest, so a batch that fails or rolls
            // back leaves it as it found it.
            tx.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS memtree_retention_ids (id TEXT PRIMARY KEY);
                 DELETE FROM temp.memtree_retention_ids;",
            )?;
            tx.prepare_cached(&pick)?
                .execute(rusqlite::params_from_iter(values.iter()))?;
            delete_dependents(tx, "SELECT id FROM temp.memtree_retention_ids", &[])?;
            let n = tx.execute(
                "DELETE FROM mem_tree_chunks WHERE id IN \
                 (SELECT id FROM temp.memtree_retention_ids)",
                [],
            )?;
            Ok(n)
        })?;
        total += deleted;
        if (deleted as i64) < BATCH {
            return Ok(total);
        }
    }
}
