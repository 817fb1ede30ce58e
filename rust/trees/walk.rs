//! Reading a tree in one statement: a summary's subtree ([`Trees::walk`])
//! and a node's ancestors ([`Trees::ancestors`]), each one recursive CTE.
//! OpenHuman's retrieval reads a tree one node per query; here a walk of
//! any size is one statement under one read lock.

use std::sync::LazyLock;

use super::model::{summary_from_row, summary_from_row_at, Summary, MAX_LEVEL, SUMMARY_COLUMNS};
use super::registry::Trees;
use crate::chunk::Chunk;
use crate::chunks::{chunk_from_row, CHUNK_COLUMNS};
use crate::error::{Error, Result};

/// One node of a subtree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A summary (the walk's root, or a node at level ≥ 1 below it).
    Summary(Summary),
    /// A chunk: a child of a level-1 summary.
    Chunk(Chunk),
}

/// The walk: `?1` the root summary, `?2` how many levels below it to go.
/// `path` orders the rows depth first, children in their `child_ids`
/// order; the children of a level-1 summary are chunks, of any higher one
/// summaries. A row is `CHUNK_COLUMNS`, then `SUMMARY_COLUMNS` (one of the
/// two groups NULL), then `is_summary`. Children whose row is missing are
/// left out.
static WALK_SQL: LazyLock<String> = LazyLock::new(|| {
    let chunk: Vec<String> = CHUNK_COLUMNS.iter().map(|c| format!("c.{c}")).collect();
    let summary: Vec<String> = SUMMARY_COLUMNS
        .split(',')
        .map(|c| format!("s.{}", c.trim()))
        .collect();
    format!(
        "WITH RECURSIVE walk(id, is_summary, depth, path) AS ( \
             SELECT id, 1, 0, '' FROM mem_tree_summaries WHERE id = ?1 \
             UNION ALL \
             SELECT j.value, p.level > 1, w.depth + 1, w.path || printf('%08d.', j.key) \
             FROM walk w \
             JOIN mem_tree_summaries p ON w.is_summary AND p.id = w.id \
             JOIN json_each(p.child_ids_json) j \
             WHERE w.depth < ?2 \
         ) \
         SELECT {}, {}, w.is_summary FROM walk w \
         LEFT JOIN mem_tree_chunks c ON NOT w.is_summary AND c.id = w.id \
         LEFT JOIN mem_tree_summaries s ON w.is_summary AND s.id = w.id \
         WHERE c.id IS NOT NULL OR s.id IS NOT NULL \
         ORDER BY w.path",
        chunk.join(", "),
        summary.join(", ")
    )
});

/// The ancestors of `?1` (a chunk through `parent_summary_id`, a summary
/// through `parent_id`), nearest first; bounded, so a link cycle in a file
/// someone else wrote ends.
static ANCESTORS_SQL: LazyLock<String> = LazyLock::new(|| {
    let summary: Vec<String> = SUMMARY_COLUMNS
        .split(',')
        .map(|c| format!("s.{}", c.trim()))
        .collect();
    format!(
        "WITH RECURSIVE up(id, n) AS ( \
             SELECT coalesce( \
                 (SELECT parent_summary_id FROM mem_tree_chunks WHERE id = ?1), \
                 (SELECT parent_id FROM mem_tree_summaries WHERE id = ?1)), 1 \
             UNION ALL \
             SELECT s.parent_id, up.n + 1 FROM up JOIN mem_tree_summaries s ON s.id = up.id \
             WHERE s.parent_id IS NOT NULL AND up.n <= {MAX_LEVEL} \
         ) \
         SELECT {} FROM up JOIN mem_tree_summaries s ON s.id = up.id ORDER BY up.n",
        summary.join(", ")
    )
});

impl Trees<'_> {
    /// The subtree under summary `id`, `depth` levels deep (`None`: to the
    /// chunks), depth first with children in seal order: the summary
    /// itself, then each child and its subtree. One statement. Soft-deleted
    /// summaries are included (flagged); empty when `id` is no summary.
    pub fn walk(&self, id: &str, depth: Option<i64>) -> Result<Vec<Node>> {
        let depth = depth.unwrap_or(MAX_LEVEL + 1);
        if depth < 0 {
            return Err(Error::invalid(
                "depth",
                format!("must be >= 0, got {depth}"),
            ));
        }
        self.store.read("walk", |conn| {
            let mut stmt = conn.prepare_cached(&WALK_SQL)?;
            let mut rows = stmt.query(rusqlite::params![id, depth])?;
            let mut nodes = Vec::new();
            while let Some(row) = rows.next()? {
                let is_summary: bool = row.get(CHUNK_COLUMNS.len() + 18)?;
                nodes.push(if is_summary {
                    Node::Summary(summary_from_row_at(row, CHUNK_COLUMNS.len())?)
                } else {
                    Node::Chunk(chunk_from_row(row)?)
                });
            }
            Ok(nodes)
        })
    }

    /// The summaries above chunk or summary `id`, nearest first (the root
    /// last). One statement.
    pub fn ancestors(&self, id: &str) -> Result<Vec<Summary>> {
        self.store.read("ancestors", |conn| {
            let mut stmt = conn.prepare_cached(&ANCESTORS_SQL)?;
            let rows = stmt.query_map([id], summary_from_row)?;
            rows.collect()
        })
    }
}
