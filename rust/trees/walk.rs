//! Reading a tree in one statement: a summary's subtree ([`Trees::walk`])
//! and a node's ancestors ([`Trees::ancestors`]), each one recursive CTE.
//! OpenHuman's retrieval reads a tree one node per query; here a walk of
//! any size is one statement under one read lock.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::model::{summary_from_row, Summary, MAX_LEVEL, SUMMARY_COLUMNS};
use super::packed::{PackedSummary, SUMMARY_COLUMN_COUNT};
use super::registry::Trees;
use crate::chunks::packed::PackedChunk;
use crate::chunks::record::Chunk;
use crate::chunks::row::{chunk_from_row, CHUNK_COLUMNS};
use crate::db::packed::Unpack;
use crate::db::raw_columns::RowPacker;
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
// A summary's columns are the ones before it.
const _: () = assert!(SUMMARY_COLUMN_COUNT == KIND_COLUMN);

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
/// It matches the rows in the order they come (`Rows::into_subtree`), with
/// no lookup by id; a priority queue in the recursion (`ORDER BY depth
/// DESC`) that would return them depth first, with the chunks in the queue,
/// took twice the statement's time (measured with SQLite's shell).
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
        Ok(self.walk_subtree(id, depth)?.into_nodes())
    }

    /// [`Trees::walk`] before its nodes are put in order: the rows as the
    /// statement returned them and the walk's order over them, so that a
    /// caller that builds one object per node (the Python glue) moves each
    /// row once, into its object.
    pub fn walk_subtree(&self, id: &str, depth: Option<i64>) -> Result<Subtree> {
        let depth = depth.unwrap_or(MAX_LEVEL + 1);
        if depth < 0 {
            return Err(Error::invalid(
                "depth",
                format!("must be >= 0, got {depth}"),
            ));
        }
        self.store.read("walk", |conn| {
            Ok(read_rows(conn, id, depth)?.into_subtree(id, depth))
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

/// The walk statement's rows, packed and matched as they come. Their
/// values are read straight through SQLite's value API
/// ([`RowPacker`]).
fn read_rows(conn: &rusqlite::Connection, id: &str, depth: i64) -> rusqlite::Result<Rows> {
    let mut stmt = conn.prepare_cached(&WALK_SQL)?;
    let mut rows = stmt.query(rusqlite::params![id, depth])?;
    let mut found = Rows::default();
    let mut packer = RowPacker::new(conn, &WALK_SQL);
    while let Some(row) = rows.next()? {
        if row.get_ref(KIND_COLUMN)?.as_i64()? == 1 {
            let summary = packer.pack(row, PackedSummary::from_values, |row| {
                PackedSummary::from_summary(&summary_from_row(row)?)
            })?;
            found.push_summary(summary);
        } else {
            let chunk = packer.pack(row, PackedChunk::from_values, |row| {
                PackedChunk::from_chunk(&chunk_from_row(row)?)
            })?;
            found.push_chunk(chunk, id, depth);
        }
    }
    found.read_raw = packer.read_raw;
    Ok(found)
}

/// A node of a [`Subtree`] by its position among the subtree's summaries or
/// chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The summary at this position.
    Summary(usize),
    /// The chunk at this position.
    Chunk(usize),
}

/// A walked subtree: its summaries and chunks as the statement returned
/// them, and the walk's order over them (depth first, children in seal
/// order). A node reached twice (a file whose links are not a tree) is
/// stored once and comes twice in the order.
#[derive(Debug)]
pub struct Subtree {
    /// The summaries, in the statement's order, each kept as its row's
    /// bytes.
    pub summaries: Vec<PackedSummary>,
    /// The chunks, in the statement's order, each kept as its row's bytes.
    pub chunks: Vec<PackedChunk>,
    /// The walk's order, as positions in `summaries` and `chunks`.
    pub order: Vec<At>,
}

impl Subtree {
    /// The nodes in the walk's order, each unpacked (a node that comes
    /// twice, once per place).
    pub fn into_nodes(self) -> Vec<Node> {
        (self.order.iter())
            .filter_map(|at| match *at {
                At::Summary(i) => self.summaries.get(i).map(|s| Node::Summary(s.unpack())),
                At::Chunk(i) => self.chunks.get(i).map(|c| Node::Chunk(c.unpack())),
            })
            .collect()
    }
}

/// The children a summary was matched with: positions `start..end` of the
/// summaries or of the chunks.
#[derive(Debug, Clone, Copy)]
enum Run {
    /// None (not expanded, or nothing matched).
    Leaf,
    /// Summaries `start..end`.
    Summaries(usize, usize),
    /// Chunks `start..end`.
    Chunks(usize, usize),
}

/// The rows of one walk as they come, with the walk's tree matched from
/// their order on the way ([`Rows::into_subtree`] says how).
#[derive(Default)]
struct Rows {
    summaries: Vec<PackedSummary>,
    chunks: Vec<PackedChunk>,
    /// Per summary, its matched children; filled when the first chunk
    /// comes (all summaries are in by then) or at the end.
    runs: Option<Vec<Run>>,
    /// The level-1 summaries whose chunks are being matched, in order,
    /// with the next of each one's child ids to look at.
    chunk_parents: Vec<usize>,
    chunk_parent: usize,
    next_child: usize,
    /// A row came that the matching cannot place: the order is found by
    /// id instead.
    unmatched: bool,
    /// How many rows were read through the running statement ([`RowPacker`]).
    read_raw: usize,
}

impl Rows {
    fn push_summary(&mut self, summary: PackedSummary) {
        // Every summary comes before the first chunk (the statement's
        // first arm); one after it cannot be matched.
        self.unmatched |= self.runs.is_some();
        self.summaries.push(summary);
    }

    /// Adds a chunk and matches it at once, while its id is at hand: it is
    /// the next listed child of the current level-1 summary that has a row
    /// (the ids listed before it have none), or of the next one.
    fn push_chunk(&mut self, chunk: PackedChunk, root: &str, depth: i64) {
        if self.runs.is_none() {
            self.match_summaries(root, depth);
        }
        if !self.unmatched {
            self.unmatched = !self.match_chunk(chunk.id());
        }
        self.chunks.push(chunk);
    }

    fn match_chunk(&mut self, id: &str) -> bool {
        let Some(runs) = self.runs.as_mut() else {
            return false;
        };
        let at = self.chunks.len();
        while let Some(&parent) = self.chunk_parents.get(self.chunk_parent) {
            let summary = &self.summaries[parent];
            while let Some(child) = summary.child_id(self.next_child) {
                self.next_child += 1;
                if child == id {
                    if let Run::Chunks(_, end) = &mut runs[parent] {
                        *end = at + 1;
                    }
                    return true;
                }
            }
            self.chunk_parent += 1;
            self.next_child = 0;
            if let Some(&next) = self.chunk_parents.get(self.chunk_parent) {
                runs[next] = Run::Chunks(at, at);
            }
        }
        false
    }

    /// Matches the summaries' runs (see [`Rows::into_subtree`]) and lists
    /// the level-1 summaries whose chunks come next. Sizes the chunks'
    /// vector once for every chunk that can come.
    fn match_summaries(&mut self, root: &str, depth: i64) {
        let count = self.summaries.len();
        let mut runs = vec![Run::Leaf; count];
        match self.summaries.first() {
            Some(first) if first.id() == root => {}
            _ => {
                self.unmatched |= count > 0;
                self.runs = Some(runs);
                return;
            }
        }
        let mut below_root = vec![0_i64; count];
        let mut next = 1;
        let mut chunks_listed = 0;
        for i in 0..count {
            if i >= next {
                self.unmatched = true; // no parent matched this row before it
                break;
            }
            let summary = &self.summaries[i];
            if below_root[i] >= depth {
                continue;
            }
            if summary.level() == 1 {
                self.chunk_parents.push(i);
                chunks_listed += summary.child_count();
            } else if summary.level() > 1 {
                let start = next;
                for child in summary.child_ids() {
                    if matches!(self.summaries.get(next), Some(s) if s.id() == child) {
                        below_root[next] = below_root[i] + 1;
                        next += 1;
                    }
                }
                runs[i] = Run::Summaries(start, next);
            }
        }
        self.unmatched |= next != count;
        if let Some(&first) = self.chunk_parents.first() {
            runs[first] = Run::Chunks(0, 0);
        }
        self.chunks.reserve_exact(chunks_listed);
        self.runs = Some(runs);
    }

    /// The subtree, its order read from where the statement put the rows:
    /// the recursion's queue is first in, first out, so the summaries come
    /// breadth first (the root, then each expanded summary's children as one
    /// run, the runs in the order of their parents) and then the chunks as
    /// one run per level-1 summary, in the same order. Each child list is
    /// matched against the next rows of its run, id by id (a listed id
    /// whose row is not next has no row: ids are unique per table, so a
    /// child that exists is the next row).
    ///
    /// Right whatever order the rows came in: each match puts a row whose
    /// id its parent lists at its place, so the tree matched is part of the
    /// walk's tree, and it is all of it exactly when every row was matched,
    /// which is checked. Otherwise (an order SQLite does not give today)
    /// the nodes are found by id.
    fn into_subtree(mut self, root: &str, depth: i64) -> Subtree {
        if self.runs.is_none() {
            self.match_summaries(root, depth);
        }
        // Every row was matched (a chunk when it came, the summaries
        // together), so the matched tree is the walk's whole tree.
        let matched = !self.unmatched;
        let order = match (&self.runs, matched) {
            (Some(runs), true) if !self.summaries.is_empty() => depth_first(runs),
            (_, true) => Vec::new(),
            _ => order_by_id(&self.summaries, &self.chunks, root, depth),
        };
        Subtree {
            summaries: self.summaries,
            chunks: self.chunks,
            order,
        }
    }
}

/// The depth-first order of matched runs, from the root (summary 0).
fn depth_first(runs: &[Run]) -> Vec<At> {
    let mut order = Vec::new();
    let mut stack = vec![0];
    while let Some(i) = stack.pop() {
        order.push(At::Summary(i));
        match runs[i] {
            Run::Leaf => {}
            // Chunks have no children: they go straight out, in order.
            Run::Chunks(start, end) => order.extend((start..end).map(At::Chunk)),
            // Pushed last child first, so that the first comes out first.
            Run::Summaries(start, end) => stack.extend((start..end).rev()),
        }
    }
    order
}

/// The walk's order found by id, whatever order the rows came in: from the
/// summary `root`, depth first, each summary's children in its `child_ids`
/// order, down to `depth` levels below the root, by the rule the statement
/// expanded them with (the children of a level-1 summary are chunks, of a
/// higher one summaries; a child with no row is left out).
fn order_by_id(
    summaries: &[PackedSummary],
    chunks: &[PackedChunk],
    root: &str,
    depth: i64,
) -> Vec<At> {
    let summary_at: HashMap<&str, usize> = (summaries.iter().enumerate())
        .map(|(i, s)| (s.id(), i))
        .collect();
    let chunk_at: HashMap<&str, usize> = (chunks.iter().enumerate())
        .map(|(i, c)| (c.id(), i))
        .collect();
    let mut order = Vec::with_capacity(summaries.len() + chunks.len());
    // An explicit stack: `depth` is the caller's and may be deep.
    let mut stack: Vec<(At, i64)> = summary_at
        .get(root)
        .map(|&i| (At::Summary(i), 0))
        .into_iter()
        .collect();
    while let Some((at, below_root)) = stack.pop() {
        order.push(at);
        let At::Summary(i) = at else { continue };
        let summary = &summaries[i];
        if below_root >= depth {
            continue;
        }
        // Pushed last child first, so that the first comes out first.
        for child in summary.child_ids().rev() {
            let found = match summary.level() {
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

    fn summary(id: &str, level: i64, children: &[&str]) -> Summary {
        Summary {
            id: id.into(),
            tree_id: "t".into(),
            tree_kind: crate::trees::TreeKind::Source,
            level,
            parent_id: None,
            child_ids: children.iter().map(|c| (*c).to_owned()).collect(),
            content: format!("text of {id}"),
            token_count: 1,
            entities: Vec::new(),
            topics: Vec::new(),
            time_range_start_ms: 0,
            time_range_end_ms: 0,
            score: 0.0,
            sealed_at_ms: 0,
            deleted: false,
            embedding: None,
            content_path: None,
            content_sha256: None,
        }
    }

    fn chunk(id: &str) -> PackedChunk {
        PackedChunk::from_chunk(&Chunk {
            id: id.into(),
            ..crate::chunks::ops::tests::full_chunk()
        })
        .expect("a valid chunk packs")
    }

    /// A file whose links are not a tree (Python's
    /// `test_walk_expands_children_by_the_parents_level_and_repeats_a_shared_node`):
    /// `x` is a summary and a chunk, `l1-a` is listed twice, `missing` and
    /// the chunk `c0` listed under `l2` have no row. The rows in the order
    /// the statement returns them: the summaries breadth first, then one
    /// run of chunks per level-1 summary.
    fn shared_rows() -> (Vec<Summary>, Vec<PackedChunk>) {
        let l1_a = || summary("l1-a", 1, &["c0", "x", "missing", "c1"]);
        let summaries = vec![
            summary("l2", 2, &["l1-a", "c0", "x", "l1-b", "l1-a"]),
            l1_a(),
            summary("x", 1, &["c1"]),
            summary("l1-b", 1, &["c1", "l1-a"]),
            l1_a(),
        ];
        let chunks = ["c0", "x", "c1", "c1", "c1", "c0", "x", "c1"];
        (summaries, chunks.into_iter().map(chunk).collect())
    }

    fn rows_of(summaries: &[Summary], chunks: &[PackedChunk], depth: i64) -> Rows {
        let mut rows = Rows::default();
        for s in summaries {
            rows.push_summary(PackedSummary::from_summary(s).expect("a valid summary packs"));
        }
        for c in chunks {
            rows.push_chunk(c.clone(), "l2", depth);
        }
        rows
    }

    fn ids(nodes: &[Node]) -> Vec<String> {
        nodes
            .iter()
            .map(|n| match n {
                Node::Summary(s) => format!("S:{}", s.id),
                Node::Chunk(c) => format!("C:{}", c.id),
            })
            .collect()
    }

    #[test]
    fn the_statements_row_order_is_matched_without_a_lookup() {
        let (summaries, chunks) = shared_rows();
        let rows = rows_of(&summaries, &chunks, MAX_LEVEL + 1);
        assert!(!rows.unmatched);
        let subtree = rows.into_subtree("l2", MAX_LEVEL + 1);
        assert_eq!(
            subtree.order,
            [
                At::Summary(0),
                At::Summary(1),
                At::Chunk(0),
                At::Chunk(1),
                At::Chunk(2),
                At::Summary(2),
                At::Chunk(3),
                At::Summary(3),
                At::Chunk(4),
                At::Summary(4),
                At::Chunk(5),
                At::Chunk(6),
                At::Chunk(7),
            ]
        );
        let by_id = order_by_id(&subtree.summaries, &subtree.chunks, "l2", MAX_LEVEL + 1);
        let expected = [
            "S:l2", "S:l1-a", "C:c0", "C:x", "C:c1", "S:x", "C:c1", "S:l1-b", "C:c1", "S:l1-a",
            "C:c0", "C:x", "C:c1",
        ];
        assert_eq!(ids(&subtree.into_nodes()), expected);
        let (summaries, chunks) = shared_rows();
        let found = Subtree {
            summaries: (summaries.iter())
                .map(|s| PackedSummary::from_summary(s).expect("packs"))
                .collect(),
            chunks,
            order: by_id,
        };
        assert_eq!(ids(&found.into_nodes()), expected);
    }

    #[test]
    fn a_depth_limit_expands_only_the_summaries_above_it() {
        let (summaries, _) = shared_rows();
        let rows = rows_of(&summaries, &[], 1);
        assert!(!rows.unmatched);
        let nodes = rows.into_subtree("l2", 1).into_nodes();
        assert_eq!(ids(&nodes), ["S:l2", "S:l1-a", "S:x", "S:l1-b", "S:l1-a"]);
        let root_only = rows_of(&summaries[..1], &[], 0).into_subtree("l2", 0);
        assert_eq!(root_only.order, [At::Summary(0)]);
    }

    #[test]
    fn rows_in_another_order_are_put_in_order_by_id() {
        let expected = {
            let (summaries, chunks) = shared_rows();
            ids(&rows_of(&summaries, &chunks, MAX_LEVEL + 1)
                .into_subtree("l2", MAX_LEVEL + 1)
                .into_nodes())
        };
        let (summaries, chunks) = shared_rows();
        // Chunks in another order, summaries in another order, a summary
        // after the chunks, the root not first: none can be matched.
        let mut reversed = chunks.clone();
        reversed.reverse();
        let mut swapped = summaries.clone();
        swapped.swap(2, 3);
        let mut root_last = summaries.clone();
        root_last.rotate_left(1);
        for (s, c) in [
            (&summaries, &reversed),
            (&swapped, &chunks),
            (&root_last, &chunks),
        ] {
            let rows = rows_of(s, c, MAX_LEVEL + 1);
            assert!(rows.unmatched);
            let nodes = rows.into_subtree("l2", MAX_LEVEL + 1).into_nodes();
            assert_eq!(ids(&nodes), expected);
        }
        let mut late = rows_of(&summaries[..4], &chunks, MAX_LEVEL + 1);
        late.push_summary(PackedSummary::from_summary(&summaries[4]).expect("packs"));
        assert!(late.unmatched);
        // Nothing found: an empty walk.
        assert!(Rows::default().into_subtree("l2", 3).order.is_empty());
    }

    #[test]
    fn the_statements_own_order_is_matched() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::io("tempdir", std::path::Path::new("."), e))?;
        let (store, _) = Store::open_file(&dir.path().join("chunks.db"))?;
        let trees = store.trees();
        let tree_id = trees
            .create_new(crate::trees::TreeKind::Source, "walk", None)?
            .id;
        let (summaries, _) = shared_rows();
        for s in &summaries[..4] {
            trees.insert_summary(&Summary {
                tree_id: tree_id.clone(),
                ..s.clone()
            })?;
        }
        store.upsert_chunks(&[
            chunk("c0").unpack(),
            chunk("x").unpack(),
            chunk("c1").unpack(),
        ])?;
        let rows = store.read("walk", |conn| read_rows(conn, "l2", MAX_LEVEL + 1))?;
        assert!(!rows.unmatched, "the statement's rows were found by id");
        // Every row read straight through SQLite's value API.
        assert_eq!(
            (rows.summaries.len(), rows.chunks.len(), rows.read_raw),
            (5, 8, 13)
        );
        let walked = ids(&trees.walk("l2", None)?);
        assert_eq!(walked.len(), 13);
        assert_eq!(walked[..3], ["S:l2", "S:l1-a", "C:c0"]);
        Ok(())
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
