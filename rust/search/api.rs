//! [`Store::search_vector`] and the [`Hit`] every search returns.
//!
//! One read transaction (under the connection mutex) fixes the snapshot:
//! the cache keys (schema cookie and vector versions, see `cache`), the
//! cached matrices of those keys and the filter's rowids are all read in
//! it. The scan itself runs after the mutex is released, on the snapshot's
//! shared copy, so searches in several threads score in parallel and never
//! block a writer.

use std::cmp::Ordering;
use std::sync::Arc;

use rusqlite::Connection;

use super::cache::{self, Snapshot, Table};
use super::filter::{self, Scope};
use super::vector::{top_k, Metric, Query, Scored};
use crate::chunks::{ChunkFilter, MAX_LIST_LIMIT};
use crate::db::store::Store;
use crate::error::Result;

/// What a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HitKind {
    /// A row of `mem_tree_chunks`.
    Chunk,
    /// A live row of `mem_tree_summaries`.
    Summary,
}

/// Ids a caller already holds, by kind and rowid, in the ranking's read
/// transaction: a hybrid search's in-memory copy of the vectors holds the id
/// of every row with an embedding. `None`: read it from the table.
pub(crate) type KnownIds<'a> = &'a dyn Fn(HitKind, i64) -> Option<String>;

impl HitKind {
    /// `"chunk"` or `"summary"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HitKind::Chunk => "chunk",
            HitKind::Summary => "summary",
        }
    }
}

/// One result of a search, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The chunk's or summary's id.
    pub id: String,
    /// Chunk or summary.
    pub kind: HitKind,
    /// Higher is better (for l2 the negated distance).
    pub score: f32,
    /// 1-based rank in the vector ranking, when the vector search found it.
    pub vector_rank: Option<u32>,
    /// 1-based rank in the text ranking (text search; `None` here).
    pub text_rank: Option<u32>,
    /// A short excerpt of the content around the best text match (text
    /// search only).
    pub snippet: Option<String>,
}

/// One table's part of a search: its snapshot and, when filtered, the
/// matching rowids (ascending).
struct Part {
    kind: HitKind,
    snapshot: Arc<Snapshot>,
    rowids: Option<Vec<i64>>,
}

/// Reads one table's part inside the open read transaction.
fn read_part(
    conn: &Connection,
    table: Table,
    kind: HitKind,
    scope: &Scope,
    schema: i64,
) -> rusqlite::Result<Option<Part>> {
    let rowids = match scope {
        Scope::Nothing => return Ok(None),
        Scope::All => None,
        Scope::Rows(query) => Some(query.rowids(conn)?),
    };
    Ok(Some(Part {
        kind,
        snapshot: cache::snapshot(conn, table, cache::key(conn, table, schema)?)?,
        rowids,
    }))
}

/// A part's best `k`, as hits without ranks, each with its rowid.
fn score_part(part: &Part, query: &Query, k: usize) -> Vec<(Scored, i64, Hit)> {
    let Some(matrix) = part.snapshot.matrix(query.dim()) else {
        return Vec::new();
    };
    let candidates = part.rowids.as_ref().map(|ids| matrix.rows_of(ids));
    if candidates.as_ref().is_some_and(Vec::is_empty) {
        return Vec::new();
    }
    top_k(query, matrix.rows(), candidates.as_deref(), k)
        .into_iter()
        .map(|s| {
            let hit = Hit {
                id: matrix.ids[s.row as usize].clone(),
                kind: part.kind,
                score: s.score,
                vector_rank: None,
                text_rank: None,
                snippet: None,
            };
            (s, matrix.rowids[s.row as usize], hit)
        })
        .collect()
}

/// Chunks and summaries in one order: score, then id, then chunk first.
fn merged_cmp(a: &(Scored, i64, Hit), b: &(Scored, i64, Hit)) -> Ordering {
    let by_score = Scored { tie: 0, ..a.0 }.rank_cmp(&Scored { tie: 0, ..b.0 });
    by_score
        .then_with(|| a.2.id.cmp(&b.2.id))
        .then(a.2.kind.cmp(&b.2.kind))
}

impl Store {
    /// The `k` stored vectors nearest `vector` by `metric` among the chunks
    /// (and with `include_summaries` the live summaries) matching `filter`,
    /// best first, ties broken by id. Exact: every matching row of the
    /// query's dimension is scored. `k` is clamped to 1..=10000; rows of
    /// another dimension or without an embedding are skipped.
    pub fn search_vector(
        &self,
        vector: &[f32],
        k: i64,
        metric: Metric,
        filter: &ChunkFilter,
        include_summaries: bool,
    ) -> Result<Vec<Hit>> {
        let (hits, ()) =
            self.search_vector_with(vector, k, metric, filter, include_summaries, |_, _| Ok(()))?;
        Ok(hits.into_iter().map(|(_, hit)| hit).collect())
    }

    /// [`Store::search_vector`], each hit with its rowid in that snapshot,
    /// with `also` run in the read transaction the vectors are read in (a
    /// hybrid search ranks the text there, so both rankings see one
    /// snapshot and can be matched by rowid). `also` is given the ids the
    /// snapshot's vectors already hold ([`KnownIds`]).
    pub(crate) fn search_vector_with<T>(
        &self,
        vector: &[f32],
        k: i64,
        metric: Metric,
        filter: &ChunkFilter,
        include_summaries: bool,
        also: impl Fn(&Connection, KnownIds<'_>) -> rusqlite::Result<T>,
    ) -> Result<(Vec<(i64, Hit)>, T)> {
        let query = Query::new(vector.to_vec(), metric)?;
        let k = k.clamp(1, MAX_LIST_LIMIT) as usize;
        let chunk_scope = filter::chunk_scope(filter);
        let summary_scope = if include_summaries {
            filter::summary_scope(filter)
        } else {
            Scope::Nothing
        };
        let (parts, extra) = self.read("search_vector", |conn| {
            // Deferred: the first statement takes the shared lock, and with
            // it SQLite notices another connection's commit (see `cache`).
            let tx = conn.unchecked_transaction()?;
            let schema: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
            let parts = [
                read_part(&tx, Table::Chunks, HitKind::Chunk, &chunk_scope, schema)?,
                read_part(
                    &tx,
                    Table::Summaries,
                    HitKind::Summary,
                    &summary_scope,
                    schema,
                )?,
            ];
            let known = |kind: HitKind, rowid: i64| {
                let part = parts.iter().flatten().find(|p| p.kind == kind)?;
                part.snapshot.id_of(rowid).map(str::to_owned)
            };
            let extra = also(&tx, &known)?;
            tx.commit()?;
            Ok((parts, extra))
        })?;
        let mut hits: Vec<(Scored, i64, Hit)> = parts
            .iter()
            .flatten()
            .flat_map(|part| score_part(part, &query, k))
            .collect();
        hits.sort_by(merged_cmp);
        hits.truncate(k);
        let hits = hits
            .into_iter()
            .enumerate()
            .map(|(rank, (_, rowid, mut hit))| {
                hit.vector_rank = Some(rank as u32 + 1);
                (rowid, hit)
            })
            .collect();
        Ok((hits, extra))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunks::ops::tests::plain_chunk;
    use crate::Chunk;

    fn chunk(id: &str, owner: &str, ts: i64) -> Chunk {
        Chunk {
            content: format!("content {id}"),
            source_id: format!("s-{owner}"),
            owner: owner.into(),
            ..plain_chunk(id, ts)
        }
    }

    fn ids(hits: &[Hit]) -> Vec<&str> {
        hits.iter().map(|h| h.id.as_str()).collect()
    }

    #[test]
    fn ranks_filters_ties_and_sees_every_commit() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open_file(&dir.path().join("s.db"))?;
        store.upsert_chunks(&[
            chunk("a", "u1", 1),
            chunk("b", "u1", 2),
            chunk("c", "u2", 3),
            chunk("d", "u2", 4),
        ])?;
        let none = ChunkFilter::default();
        assert!(store
            .search_vector(&[1.0, 0.0], 5, Metric::Dot, &none, false)?
            .is_empty());
        store.set_chunk_embedding("a", Some(&[1.0, 0.0]))?;
        store.set_chunk_embedding("b", Some(&[0.0, 1.0]))?;
        store.set_chunk_embedding("c", Some(&[1.0, 0.0]))?;
        store.set_chunk_embedding("d", Some(&[1.0, 0.0, 0.0]))?;
        let hits = store.search_vector(&[2.0, 0.0], 10, Metric::Cosine, &none, false)?;
        // a and c tie (cosine 1): by id. d has another dimension.
        assert_eq!(ids(&hits), ["a", "c", "b"]);
        assert_eq!(hits[0].vector_rank, Some(1));
        assert_eq!(hits[0].score, 1.0);
        let hits = store.search_vector(&[0.0, 1.0], 1, Metric::L2, &none, false)?;
        assert_eq!((ids(&hits), hits[0].score), (vec!["b"], -0.0));
        let u2 = ChunkFilter {
            owner: Some("u2".into()),
            ..ChunkFilter::default()
        };
        assert_eq!(
            ids(&store.search_vector(&[0.0, 1.0], 10, Metric::Dot, &u2, false)?),
            ["c"]
        );
        // A commit by this connection is seen by the next search.
        store.set_chunk_embedding("b", Some(&[5.0, 0.0]))?;
        let hits = store.search_vector(&[1.0, 0.0], 1, Metric::Dot, &none, false)?;
        assert_eq!(ids(&hits), ["b"]);
        store.set_chunk_embedding("b", None)?;
        let hits = store.search_vector(&[1.0, 0.0], 10, Metric::Dot, &none, false)?;
        assert_eq!(ids(&hits), ["a", "c"]);
        // And one by another connection (as another process would commit).
        let other = Connection::open(store.path()).expect("open");
        other
            .execute("DELETE FROM mem_tree_chunks WHERE id = 'a'", [])
            .expect("delete");
        let hits = store.search_vector(&[1.0, 0.0], 10, Metric::Dot, &none, false)?;
        assert_eq!(ids(&hits), ["c"]);
        Ok(())
    }
}
