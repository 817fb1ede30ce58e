//! Sealed summaries (`mem_tree_summaries`): insert (idempotent on id, the
//! row immutable afterwards but for its soft-delete flag, its embedding and
//! the parent link a later seal sets), read, list per level, count, soft
//! delete, and the embedding in the same BLOB format as a chunk's.

use rusqlite::{params, OptionalExtension, Transaction};

use super::model::{list_to_json, summary_from_row, Summary, SUMMARY_COLUMNS};
use super::registry::Trees;
use crate::chunks::record::{embedding_to_blob, non_empty, validate_embedding};
use crate::error::Result;

/// OpenHuman's insert: `OR IGNORE`, so a retried seal does not insert twice
/// and an existing row is never overwritten.
const INSERT_SUMMARY_SQL: &str = "INSERT OR IGNORE INTO mem_tree_summaries (\
     id, tree_id, tree_kind, level, parent_id, child_ids_json, content, token_count, \
     entities_json, topics_json, time_range_start_ms, time_range_end_ms, score, \
     sealed_at_ms, deleted, embedding, content_path, content_sha256) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";

/// Inserts `s` inside `tx`; whether a row was added (`false`: the id exists).
pub(crate) fn insert_summary_in(tx: &Transaction<'_>, s: &Summary) -> rusqlite::Result<bool> {
    let changed = tx.prepare_cached(INSERT_SUMMARY_SQL)?.execute(params![
        s.id,
        s.tree_id,
        s.tree_kind.as_str(),
        s.level,
        s.parent_id,
        list_to_json(&s.child_ids),
        s.content,
        s.token_count,
        list_to_json(&s.entities),
        list_to_json(&s.topics),
        s.time_range_start_ms,
        s.time_range_end_ms,
        s.score,
        s.sealed_at_ms,
        i64::from(s.deleted),
        s.embedding.as_deref().map(embedding_to_blob),
        s.content_path,
        s.content_sha256,
    ])?;
    Ok(changed == 1)
}

impl Trees<'_> {
    /// Inserts a summary; `false` when a row with its id already exists (it
    /// is left as it is). Every field is checked first; the tree must exist
    /// (a foreign-key constraint error otherwise).
    pub fn insert_summary(&self, summary: &Summary) -> Result<bool> {
        summary.validate()?;
        self.store
            .write("insert_summary", |tx| insert_summary_in(tx, summary))
    }

    /// One summary by id, soft-deleted or not (`deleted` says which).
    pub fn get_summary(&self, id: &str) -> Result<Option<Summary>> {
        self.store.read("get_summary", |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM mem_tree_summaries WHERE id = ?1"
            ))?
            .query_row([id], summary_from_row)
            .optional()
        })
    }

    /// The live summaries of `tree_id` at `level`, in seal order
    /// (`sealed_at_ms`, then insertion order — the rowid — for a tie: two
    /// seals in one millisecond list in the order they were made).
    pub fn list_summaries(&self, tree_id: &str, level: i64) -> Result<Vec<Summary>> {
        self.store.read("list_summaries", |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM mem_tree_summaries \
                 WHERE tree_id = ?1 AND level = ?2 AND deleted = 0 \
                 ORDER BY sealed_at_ms ASC, rowid ASC"
            ))?;
            let rows = stmt.query_map(params![tree_id, level], summary_from_row)?;
            rows.collect()
        })
    }

    /// How many live summaries `tree_id` has.
    pub fn count_summaries(&self, tree_id: &str) -> Result<i64> {
        self.store.read("count_summaries", |conn| {
            conn.prepare_cached(
                "SELECT COUNT(*) FROM mem_tree_summaries WHERE tree_id = ?1 AND deleted = 0",
            )?
            .query_row([tree_id], |r| r.get(0))
        })
    }

    /// Soft-deletes a summary (its row stays, flagged); whether it was live.
    pub fn delete_summary(&self, id: &str) -> Result<bool> {
        non_empty("id", id)?;
        self.store.write("delete_summary", |tx| {
            let changed = tx.execute(
                "UPDATE mem_tree_summaries SET deleted = 1 WHERE id = ?1 AND deleted = 0",
                [id],
            )?;
            Ok(changed == 1)
        })
    }

    /// Sets (`Some`) or clears (`None`) a summary's embedding, the same
    /// check and format as a chunk's; whether the summary exists.
    pub fn set_summary_embedding(&self, id: &str, vector: Option<&[f32]>) -> Result<bool> {
        non_empty("id", id)?;
        if let Some(values) = vector {
            validate_embedding(values, "vector")?;
        }
        let blob = vector.map(embedding_to_blob);
        self.store.write("set_summary_embedding", |tx| {
            let changed = tx.execute(
                "UPDATE mem_tree_summaries SET embedding = ?2 WHERE id = ?1",
                params![id, blob],
            )?;
            Ok(changed == 1)
        })
    }

    /// A summary's embedding; `None` when it is missing or has none.
    pub fn get_summary_embedding(&self, id: &str) -> Result<Option<Vec<f32>>> {
        Ok(self.get_summary(id)?.and_then(|s| s.embedding))
    }
}
