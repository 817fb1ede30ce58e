//! Unsealed frontiers (`mem_tree_buffers`): read one (an empty buffer when
//! there is no row), list the stale level-0 ones, and append items in one
//! transaction. Users change buffers only through [`Trees::append_to_buffer`]
//! and [`Trees::seal`](super::registry::Trees): every memtree write moves
//! `updated_at_ms` strictly forward, which is what makes a buffer's
//! [`version`](super::model::Buffer::version) change on every write.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::model::{
    buffer_from_row, check_count, check_ids, check_level, list_to_json, Buffer, BUFFER_COLUMNS,
};
use super::registry::Trees;
use crate::chunk::{check_time_ms, non_empty};
use crate::clock::now_ms;
use crate::error::{Error, Result};

/// The buffer at `(tree_id, level)` as `conn` sees it (inside a transaction
/// when `conn` is one); the empty buffer when there is no row.
pub(crate) fn buffer_in(conn: &Connection, tree_id: &str, level: i64) -> rusqlite::Result<Buffer> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {BUFFER_COLUMNS} FROM mem_tree_buffers WHERE tree_id = ?1 AND level = ?2"
        ))?
        .query_row(params![tree_id, level], buffer_from_row)
        .optional()?;
    Ok(row.unwrap_or_else(|| Buffer::empty(tree_id, level)))
}

/// Writes `buf` (OpenHuman's upsert); its `updated_at_ms` becomes now, or
/// one past the previous write when the clock has not moved on, so that
/// two writes never leave the same version. Returns the buffer as stored.
pub(crate) fn store_buffer_in(tx: &Transaction<'_>, buf: &Buffer) -> rusqlite::Result<Buffer> {
    let now = match buf.updated_at_ms {
        Some(previous) => now_ms().max(previous.saturating_add(1)),
        None => now_ms(),
    };
    tx.prepare_cached(
        "INSERT INTO mem_tree_buffers (tree_id, level, item_ids_json, token_sum, \
         oldest_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT(tree_id, level) DO UPDATE SET item_ids_json = excluded.item_ids_json, \
         token_sum = excluded.token_sum, oldest_at_ms = excluded.oldest_at_ms, \
         updated_at_ms = excluded.updated_at_ms",
    )?
    .execute(params![
        buf.tree_id,
        buf.level,
        list_to_json(&buf.item_ids),
        buf.token_sum,
        buf.oldest_at_ms,
        now
    ])?;
    Ok(Buffer {
        updated_at_ms: Some(now),
        ..buf.clone()
    })
}

/// Adds to `buf` the items it does not hold yet (OpenHuman's append is
/// idempotent per item: a retried append neither duplicates a child nor
/// counts its tokens twice); `oldest` lowers `oldest_at_ms` when any item
/// was added. Whether any was.
pub(crate) fn add_items(buf: &mut Buffer, items: &[(String, i64)], oldest: i64) -> bool {
    let mut added = false;
    for (id, tokens) in items {
        if buf.item_ids.iter().any(|existing| existing == id) {
            continue;
        }
        buf.item_ids.push(id.clone());
        buf.token_sum = buf.token_sum.saturating_add(*tokens);
        added = true;
    }
    if added {
        buf.oldest_at_ms = Some(buf.oldest_at_ms.map_or(oldest, |o| o.min(oldest)));
    }
    added
}

impl Trees<'_> {
    /// The buffer at `(tree_id, level)`; an empty one when there is no row.
    pub fn get_buffer(&self, tree_id: &str, level: i64) -> Result<Buffer> {
        self.store
            .read("get_buffer", |conn| buffer_in(conn, tree_id, level))
    }

    /// The non-empty level-0 buffers whose oldest item is at or before
    /// `older_than_ms`, oldest first. Upper levels are never listed: forcing
    /// one to seal under its fan-out would make a one-child summary.
    pub fn list_stale_buffers(&self, older_than_ms: i64) -> Result<Vec<Buffer>> {
        self.store.read("list_stale_buffers", |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {BUFFER_COLUMNS} FROM mem_tree_buffers \
                 WHERE oldest_at_ms IS NOT NULL AND oldest_at_ms <= ?1 AND level = 0 \
                 ORDER BY oldest_at_ms ASC, tree_id ASC"
            ))?;
            let rows = stmt.query_map([older_than_ms], buffer_from_row)?;
            rows.collect()
        })
    }

    /// Appends `item_ids` (with their token counts, one each) to the buffer
    /// at `(tree_id, level)` in one transaction; items already there are
    /// skipped. `oldest_ms` is the time of the oldest item appended. Returns
    /// the buffer as it now stands (its new `version`). The tree must exist.
    pub fn append_to_buffer(
        &self,
        tree_id: &str,
        level: i64,
        item_ids: &[String],
        tokens: &[i64],
        oldest_ms: i64,
    ) -> Result<Buffer> {
        non_empty("tree_id", tree_id)?;
        check_level("level", level, 0)?;
        check_ids("item_ids", item_ids)?;
        if tokens.len() != item_ids.len() {
            return Err(Error::invalid(
                "tokens",
                format!(
                    "expected one count per item ({}), got {}",
                    item_ids.len(),
                    tokens.len()
                ),
            ));
        }
        for (i, n) in tokens.iter().enumerate() {
            check_count(&format!("tokens[{i}]"), *n)?;
        }
        check_time_ms("oldest", oldest_ms)?;
        let items: Vec<(String, i64)> = item_ids
            .iter()
            .cloned()
            .zip(tokens.iter().copied())
            .collect();
        self.store.write("append_to_buffer", |tx| {
            let mut buf = buffer_in(tx, tree_id, level)?;
            if !add_items(&mut buf, &items, oldest_ms) {
                return Ok(buf);
            }
            store_buffer_in(tx, &buf)
        })
    }
}
