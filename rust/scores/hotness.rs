//! Entity hotness (`mem_tree_entity_hotness`): read, read-or-fresh (a zero
//! row, not stored), upsert, and the count of distinct trees an entity is
//! indexed in, which refreshes `distinct_sources`.

use rusqlite::{params, OptionalExtension};

use super::model::{hotness_from_row, Hotness, HOTNESS_COLUMNS};
use super::rows::Scores;
use crate::clock::now_ms;
use crate::error::Result;

impl Scores<'_> {
    /// An entity's counters; `None` when it was never stored.
    pub fn get_hotness(&self, entity_id: &str) -> Result<Option<Hotness>> {
        self.store.read("get_hotness", |conn| {
            conn.prepare_cached(&format!(
                "SELECT {HOTNESS_COLUMNS} FROM mem_tree_entity_hotness WHERE entity_id = ?1"
            ))?
            .query_row([entity_id], hotness_from_row)
            .optional()
        })
    }

    /// An entity's counters, or a zero row stamped now when it was never
    /// stored (the zero row is not written).
    pub fn get_or_fresh_hotness(&self, entity_id: &str) -> Result<Hotness> {
        Ok(self
            .get_hotness(entity_id)?
            .unwrap_or_else(|| Hotness::fresh(entity_id, now_ms())))
    }

    /// Writes an entity's counters, replacing every field (OpenHuman's upsert).
    pub fn upsert_hotness(&self, h: &Hotness) -> Result<()> {
        h.validate()?;
        self.store.write("upsert_hotness", |tx| {
            tx.prepare_cached(
                "INSERT INTO mem_tree_entity_hotness (entity_id, mention_count_30d, \
                 distinct_sources, last_seen_ms, query_hits_30d, graph_centrality, \
                 ingests_since_check, last_hotness, last_updated_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT(entity_id) DO UPDATE SET \
                 mention_count_30d = excluded.mention_count_30d, \
                 distinct_sources = excluded.distinct_sources, \
                 last_seen_ms = excluded.last_seen_ms, \
                 query_hits_30d = excluded.query_hits_30d, \
                 graph_centrality = excluded.graph_centrality, \
                 ingests_since_check = excluded.ingests_since_check, \
                 last_hotness = excluded.last_hotness, \
                 last_updated_ms = excluded.last_updated_ms",
            )?
            .execute(params![
                h.entity_id,
                h.mention_count_30d,
                h.distinct_sources,
                h.last_seen_ms,
                h.query_hits_30d,
                h.graph_centrality,
                h.ingests_since_check,
                h.last_hotness,
                h.last_updated_ms
            ])
            .map(drop)
        })
    }

    /// How many distinct trees `entity_id` is indexed in (rows without a
    /// tree do not count).
    pub fn distinct_trees(&self, entity_id: &str) -> Result<i64> {
        self.store.read("distinct_trees", |conn| {
            conn.prepare_cached(
                "SELECT COUNT(DISTINCT tree_id) FROM mem_tree_entity_index \
                 WHERE entity_id = ?1 AND tree_id IS NOT NULL",
            )?
            .query_row([entity_id], |r| r.get(0))
        })
    }

    /// How many entities have counters.
    pub fn count_hotness(&self) -> Result<i64> {
        self.store.read("count_hotness", |conn| {
            conn.prepare_cached("SELECT COUNT(*) FROM mem_tree_entity_hotness")?
                .query_row([], |r| r.get(0))
        })
    }
}
