//! Reading a tree in one statement: a summary's subtree ([`Trees::walk`])
//! and a node's ancestors ([`Trees::ancestors`]), each one recursive CTE.
//! OpenHuman's retrieval reads a tree one node per query; here a walk of
//! any size is one statement under one read lock.

use std::sync::LazyLock;

use super::model::{summary_from_row, summary_from_row_at, Summary, MAX_LEVEL, SUMMARY_COLUMNS};
use super::registry::Trees;
use crate::chunks::record::Chunk;
use crate::chunks::row::{chunk_from_row, CHUNK_COLUMNS};
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
/// The recursion runs over summaries only, carrying each one's
/// `child_ids_json` so no row is read twice; the chunks under the level-1
/// summaries are expanded once, after it (a chunk row in the recursive
/// queue cost an index probe each). The children of a level-1 summary are
/// chunks, of any higher one summaries; children whose row is missing are
/// left out. A row is `CHUNK_COLUMNS`, then `SUMMARY_COLUMNS` (one of the
/// two groups NULL), then `is_summary` and `path`: `path` orders the rows
/// depth first, children in their `child_ids` order. The rows are sorted
/// by `path` in Rust: SQLite's sorter would copy every wide row.
static WALK_SQL: LazyLock<String> = LazyLock::new(|| {
    let chunk: Vec<String> = CHUNK_COLUMNS.iter().map(|c| format!("c.{c}")).collect();
    let summary: Vec<String> = SUMMARY_COLUMNS
        .split(',')
        .map(|c| format!("s.{}", c.trim()))
        .collect();
    format!(
        "WITH RECURSIVE walk(id, level, depth, path, children) AS ( \
             SELECT id, level, 0, '', child_ids_json FROM mem_tree_summaries WHERE id = ?1 \
             UNION ALL \
             SELECT s.id, s.level, w.depth + 1, w.path || printf('%08d.', j.key), \
                    s.child_ids_json \
             FROM walk w CROSS JOIN json_each(w.children) j \
             CROSS JOIN mem_tree_summaries s ON s.id = j.value \
             WHERE w.level > 1 AND w.depth < ?2 \
         ), \
         nodes(id, is_summary, path) AS ( \
             SELECT id, 1, path FROM walk \
             UNION ALL \
             SELECT j.value, 0, w.path || printf('%08d.', j.key) \
             FROM walk w CROSS JOIN json_each(w.children) j \
             WHERE w.level = 1 AND w.depth < ?2 \
         ) \
         SELECT {}, {}, n.is_summary, n.path FROM nodes n \
         LEFT JOIN mem_tree_chunks c ON NOT n.is_summary AND c.id = n.id \
         LEFT JOIN mem_tree_summaries s ON n.is_summary AND s.id = n.id \
         WHERE c.id IS NOT NULL OR s.id IS NOT NULL",
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
            let mut nodes: Vec<(String, Node)> = Vec::new();
            while let Some(row) = rows.next()? {
                let is_summary: bool = row.get(CHUNK_COLUMNS.len() + 18)?;
                let path: String = row.get(CHUNK_COLUMNS.len() + 19)?;
                let node = if is_summary {
                    Node::Summary(summary_from_row_at(row, CHUNK_COLUMNS.len())?)
                } else {
                    Node::Chunk(chunk_from_row(row)?)
                };
                nodes.push((path, node));
            }
            // Paths are unique (a child's extends its parent's by its
            // index), so an unstable sort is exact.
            nodes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            Ok(nodes.into_iter().map(|(_, node)| node).collect())
        })
    }

    /// Runs the walk's statement to its last row without reading a column:
    /// the time of the SQL alone, which the benchmark sets against
    /// [`Trees::walk`]'s (SQL, decoding and ordering). The number of rows.
    #[doc(hidden)]
    pub fn walk_rows(&self, id: &str, depth: Option<i64>) -> Result<usize> {
        let depth = depth.unwrap_or(MAX_LEVEL + 1);
        self.store.read("walk_rows", |conn| {
            let mut stmt = conn.prepare_cached(&WALK_SQL)?;
            let mut rows = stmt.query(rusqlite::params![id, depth])?;
            let mut n = 0;
            while rows.next()?.is_some() {
                n += 1;
            }
            Ok(n)
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
