//! Reading a tree in one statement: a summary's subtree ([`Trees::walk`])
//! and a node's ancestors ([`Trees::ancestors`]), each one recursive CTE.
//! OpenHuman's retrieval reads a tree one node per query; here a walk of
//! any size is one statement under one read lock.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::model::{summary_from_row, Summary, MAX_LEVEL, SUMMARY_COLUMNS};
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

/// The column of a walk row that says which kind of row it is (1: a
/// summary, 0: a chunk); the row's node columns come before it.
const KIND_COLUMN: usize = 18;

// A chunk's columns and one NULL fill a summary's 18: a chunk column added
// must widen the summaries' arm too.
const _: () = assert!(CHUNK_COLUMNS.len() + 1 == KIND_COLUMN);

/// The walk: `?1` the root summary, `?2` how many levels below it to go.
/// The recursion runs over summaries only (the children of a summary above
/// level 1 are summaries), carrying each one's `child_ids_json`; then one
/// arm reads the walked summaries' rows and the other the chunks under the
/// level-1 ones (the children of a level-1 summary are chunks), each row
/// found by its primary key. Children whose row is missing have no row.
/// A row is a summary's [`SUMMARY_COLUMNS`] or a chunk's [`CHUNK_COLUMNS`]
/// padded with one NULL to as many, then [`KIND_COLUMN`]. Neither arm orders
/// anything: [`Trees::walk`] puts the rows depth first from the summaries'
/// child lists, which it decodes anyway, where an order built in SQL (a
/// path string per row, sorted) cost more than the rest of the statement.
static WALK_SQL: LazyLock<String> = LazyLock::new(|| {
    let chunk: Vec<String> = CHUNK_COLUMNS.iter().map(|c| format!("c.{c}")).collect();
    let summary: Vec<String> = SUMMARY_COLUMNS
        .split(',')
        .map(|c| format!("s.{}", c.trim()))
        .collect();
    format!(
        "WITH RECURSIVE walk(id, level, depth, children) AS ( \
             SELECT id, level, 0, child_ids_json FROM mem_tree_summaries WHERE id = ?1 \
             UNION ALL \
             SELECT s.id, s.level, w.depth + 1, s.child_ids_json \
             FROM walk w CROSS JOIN json_each(w.children) j \
             CROSS JOIN mem_tree_summaries s ON s.id = j.value \
             WHERE w.level > 1 AND w.depth < ?2 \
         ) \
         SELECT {}, 1 FROM walk w CROSS JOIN mem_tree_summaries s ON s.id = w.id \
         UNION ALL \
         SELECT {}, NULL, 0 FROM walk w CROSS JOIN json_each(w.children) j \
         CROSS JOIN mem_tree_chunks c ON c.id = j.value \
         WHERE w.level = 1 AND w.depth < ?2",
        summary.join(", "),
        chunk.join(", ")
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
        let rows = self.store.read("walk", |conn| {
            let mut stmt = conn.prepare_cached(&WALK_SQL)?;
            let mut rows = stmt.query(rusqlite::params![id, depth])?;
            let mut found = Rows::default();
            while let Some(row) = rows.next()? {
                if row.get_ref(KIND_COLUMN)?.as_i64()? == 1 {
                    found.summaries.push(Some(summary_from_row(row)?));
                } else {
                    found.chunks.push(Some(chunk_from_row(row)?));
                }
            }
            Ok(found)
        })?;
        Ok(rows.depth_first(id, depth))
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

/// The rows of one walk, in the order the statement returned them; each
/// slot is emptied when its node moves out.
#[derive(Default)]
struct Rows {
    summaries: Vec<Option<Summary>>,
    chunks: Vec<Option<Chunk>>,
}

/// A node of [`Rows`] by position.
#[derive(Clone, Copy)]
enum At {
    Summary(usize),
    Chunk(usize),
}

impl Rows {
    /// The walk's order: from the summary `root`, depth first, each
    /// summary's children in its `child_ids` order, down to `depth` levels
    /// below the root, by the rule the statement expanded them with (the
    /// children of a level-1 summary are chunks, of a higher one
    /// summaries; a child with no row is left out). A node reached twice
    /// (a file whose links are not a tree) comes twice, as the statement
    /// returned it: the last time moved, before that copied.
    fn depth_first(mut self, root: &str, depth: i64) -> Vec<Node> {
        let order = self.order(root, depth);
        let mut summary_uses = vec![0_u32; self.summaries.len()];
        let mut chunk_uses = vec![0_u32; self.chunks.len()];
        for at in &order {
            match *at {
                At::Summary(i) => summary_uses[i] += 1,
                At::Chunk(i) => chunk_uses[i] += 1,
            }
        }
        // Sized once: a vector grown by doubling copies every node again.
        let mut nodes = Vec::with_capacity(order.len());
        for at in order {
            let node = match at {
                At::Summary(i) => {
                    summary_uses[i] -= 1;
                    take_or_copy(&mut self.summaries[i], summary_uses[i]).map(Node::Summary)
                }
                At::Chunk(i) => {
                    chunk_uses[i] -= 1;
                    take_or_copy(&mut self.chunks[i], chunk_uses[i]).map(Node::Chunk)
                }
            };
            nodes.extend(node);
        }
        nodes
    }

    /// [`Rows::depth_first`]'s order, as positions in `self`.
    fn order(&self, root: &str, depth: i64) -> Vec<At> {
        let summary_at: HashMap<&str, usize> = (self.summaries.iter().enumerate())
            .filter_map(|(i, s)| Some((s.as_ref()?.id.as_str(), i)))
            .collect();
        let chunk_at: HashMap<&str, usize> = (self.chunks.iter().enumerate())
            .filter_map(|(i, c)| Some((c.as_ref()?.id.as_str(), i)))
            .collect();
        let mut order = Vec::with_capacity(self.summaries.len() + self.chunks.len());
        // An explicit stack: `depth` is the caller's and may be deep.
        let mut stack: Vec<(At, i64)> = summary_at
            .get(root)
            .map(|&i| (At::Summary(i), 0))
            .into_iter()
            .collect();
        while let Some((at, below_root)) = stack.pop() {
            order.push(at);
            let At::Summary(i) = at else { continue };
            let Some(summary) = &self.summaries[i] else {
                continue;
            };
            if below_root >= depth {
                continue;
            }
            // Pushed last child first, so that the first comes out first.
            for child in summary.child_ids.iter().rev() {
                let child = child.as_str();
                let found = match summary.level {
                    1 => chunk_at.get(child).map(|&c| At::Chunk(c)),
                    level if level > 1 => summary_at.get(child).map(|&s| At::Summary(s)),
                    _ => None,
                };
                if let Some(child_at) = found {
                    stack.push((child_at, below_root + 1));
                }
            }
        }
        order
    }
}

/// The node in `slot`: moved out when no later use is left, else copied.
fn take_or_copy<T: Clone>(slot: &mut Option<T>, uses_left: u32) -> Option<T> {
    if uses_left == 0 {
        slot.take()
    } else {
        slot.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::store::Store;

    /// The steps of `sql`'s query plan, as `EXPLAIN QUERY PLAN` words them.
    fn plan(store: &Store, sql: &str) -> Result<Vec<String>> {
        store.read("plan", |conn| {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let params: [&dyn rusqlite::ToSql; 2] = [&"root", &3];
            let steps = stmt.query_map(&params[..stmt.parameter_count()], |r| r.get(3))?;
            steps.collect()
        })
    }

    #[test]
    fn the_walk_and_ancestors_find_every_row_by_primary_key() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("tempdir", std::path::Path::new("."), e))?;
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        assert_eq!(SUMMARY_COLUMNS.split(',').count(), KIND_COLUMN);
        let by_key = |table: &str| format!("USING INDEX sqlite_autoindex_{table}_1 (id=?)");
        for (sql, summary_seeks, chunk_seeks) in [(&*WALK_SQL, 3, 1), (&*ANCESTORS_SQL, 3, 1)] {
            let steps = plan(&store, sql)?;
            // Only the CTEs and json_each are scanned, never a table.
            for step in &steps {
                if let Some(scanned) = step.strip_prefix("SCAN ") {
                    assert!(
                        ["w", "j", "up", "walk", "CONSTANT ROW"]
                            .iter()
                            .any(|t| scanned.starts_with(t)),
                        "{step} in {steps:#?}"
                    );
                }
            }
            let seeks = |table: &str| {
                steps
                    .iter()
                    .filter(|s| s.starts_with("SEARCH") && s.ends_with(&by_key(table)))
                    .count()
            };
            assert_eq!(seeks("mem_tree_summaries"), summary_seeks, "{steps:#?}");
            assert_eq!(seeks("mem_tree_chunks"), chunk_seeks, "{steps:#?}");
        }
        Ok(())
    }
}
