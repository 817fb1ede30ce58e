//! The entity index (`mem_tree_entity_index`): which entities a node
//! mentions, idempotent per `(entity, node)`; lookups by entity newest
//! first, a node's entities by score, clearing a node's rows.

use rusqlite::{params, Transaction};

use super::model::{hit_from_row, Entity, EntityHit, HIT_COLUMNS};
use super::rows::Scores;
use crate::chunk::{check_time_ms, non_empty};
use crate::error::{Error, Result};

/// OpenHuman's index statement plus `is_user` (its later column):
/// `INSERT OR REPLACE` on the `(entity_id, node_id)` key.
const INDEX_SQL: &str = "INSERT OR REPLACE INTO mem_tree_entity_index (\
     entity_id, node_id, node_kind, entity_kind, surface, score, timestamp_ms, tree_id, \
     is_user) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// Every entity checked, each named by its index.
pub(crate) fn validate_entities(entities: &[Entity]) -> Result<()> {
    entities
        .iter()
        .enumerate()
        .try_for_each(|(i, e)| e.validate(&format!("entities[{i}].")))
}

/// Indexes `entities` against `node_id` inside `tx`; how many rows.
pub(crate) fn index_in(
    tx: &Transaction<'_>,
    node_id: &str,
    node_kind: &str,
    entities: &[Entity],
    timestamp_ms: i64,
    tree_id: Option<&str>,
) -> rusqlite::Result<usize> {
    let mut stmt = tx.prepare_cached(INDEX_SQL)?;
    for e in entities {
        stmt.execute(params![
            e.entity_id,
            node_id,
            node_kind,
            e.entity_kind,
            e.surface,
            e.score,
            timestamp_ms,
            tree_id,
            i64::from(e.is_user),
        ])?;
    }
    Ok(entities.len())
}

/// Deletes every index row of `node_id` inside `tx`; how many.
pub(crate) fn clear_in(tx: &Transaction<'_>, node_id: &str) -> rusqlite::Result<usize> {
    tx.prepare_cached("DELETE FROM mem_tree_entity_index WHERE node_id = ?1")?
        .execute([node_id])
}

/// The node kinds OpenHuman writes.
fn check_node_kind(node_kind: &str) -> Result<()> {
    match node_kind {
        "leaf" | "summary" => Ok(()),
        other => Err(Error::invalid(
            "node_kind",
            format!("expected \"leaf\" or \"summary\", got {other:?}"),
        )),
    }
}

impl Scores<'_> {
    /// Indexes `entities` against a node in one transaction (idempotent per
    /// `(entity, node)`: a second index of the pair replaces the first);
    /// how many rows were written.
    pub fn index_entities(
        &self,
        node_id: &str,
        node_kind: &str,
        entities: &[Entity],
        timestamp_ms: i64,
        tree_id: Option<&str>,
    ) -> Result<usize> {
        non_empty("node_id", node_id)?;
        check_node_kind(node_kind)?;
        validate_entities(entities)?;
        check_time_ms("timestamp", timestamp_ms)?;
        if let Some(tree) = tree_id {
            non_empty("tree_id", tree)?;
        }
        if entities.is_empty() {
            return Ok(0);
        }
        self.store.write("index_entities", |tx| {
            index_in(tx, node_id, node_kind, entities, timestamp_ms, tree_id)
        })
    }

    /// The nodes indexed against `entity_id`, newest first, at most `limit`.
    pub fn lookup_entity(&self, entity_id: &str, limit: i64) -> Result<Vec<EntityHit>> {
        self.store.read("lookup_entity", |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {HIT_COLUMNS} FROM mem_tree_entity_index WHERE entity_id = ?1 \
                 ORDER BY timestamp_ms DESC, node_id ASC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![entity_id, limit], hit_from_row)?;
            rows.collect()
        })
    }

    /// The distinct entity ids of a node, highest score first, then newest,
    /// then by id.
    pub fn node_entities(&self, node_id: &str) -> Result<Vec<String>> {
        self.store.read("node_entities", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT entity_id FROM mem_tree_entity_index WHERE node_id = ?1 \
                 ORDER BY score DESC, timestamp_ms DESC, entity_id ASC",
            )?;
            let rows = stmt.query_map([node_id], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// Deletes a node's index rows; how many.
    pub fn clear_entities(&self, node_id: &str) -> Result<usize> {
        non_empty("node_id", node_id)?;
        self.store
            .write("clear_entities", |tx| clear_in(tx, node_id))
    }

    /// How many index rows there are.
    pub fn count_entities(&self) -> Result<i64> {
        self.store.read("count_entities", |conn| {
            conn.prepare_cached("SELECT COUNT(*) FROM mem_tree_entity_index")?
                .query_row([], |r| r.get(0))
        })
    }
}
