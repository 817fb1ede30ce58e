//! [`Store::search`]: text and vector search fused by reciprocal rank
//! fusion, or either one alone.
//!
//! RRF scores a hit by its ranks, not its raw scores (bm25 and cosine are
//! not on one scale): `score = Σ 1 / (60 + rank)` over the lists that hold
//! it. Each list is taken to depth `max(k, FUSION_DEPTH)`, so a hit ranked
//! well in both lists but below `k` in each still competes; a hit absent
//! from a list (or below its depth) gets nothing from it and that rank is
//! `None`. Ties on the fused score are broken by id (then chunk before
//! summary), as in the single searches.
//!
//! Why 100 deep, and what it costs. Both lists are read in one snapshot
//! and matched by rowid. On the bench (100k chunks, 768-d vectors, 15
//! one-word queries, CPU medians) the whole hybrid cost 2.1-2.9 ms more
//! than the two top-10 searches (22-25 ms) when the text list was ranked
//! 100 deep as `search_text` ranks 10, against 0.1 ms at depth 10, 0.8 at
//! 20 and 2.1 at 50. Nearly all of it was ties: one common word in
//! chunks of one size gives many rows one bm25, and the 100th row ended a
//! run of ties past the ranking's first read for 11 of 15 queries, so
//! every match was scored a second time. The text ranking now reads
//! `2k` rows first (a run past that: 1 of 15), looks up the id of its first
//! `k` rows and of its tied rows only (a row past the `k`-th that the
//! vector list lacks can never reach the fused `k`, see [`fuse`]), and
//! takes ids the vectors' in-memory copy already holds: 0.9-1.2 ms more
//! than the two searches (+3-4%). A shallower list changes the results: on
//! the bench's random vectors the fused top 10 at depth 10 or 20 differed
//! from depth 100 for 1 query of 15 (overlap@10 0.99), at 50 for none;
//! with vectors that agree with the text the deep hits matter more.

use std::collections::HashMap;

use super::api::{Hit, HitKind};
use super::text::{match_query, rank_text, Syntax, TextRow};
use super::vector::Metric;
use crate::chunks::{ChunkFilter, MAX_LIST_LIMIT};
use crate::db::store::Store;
use crate::error::{Error, Result};

/// The RRF constant (Cormack et al. 2009).
pub const RRF_K: f64 = 60.0;

/// How deep each list is read when fusing (at least `k`).
pub const FUSION_DEPTH: i64 = 100;

/// A row of one ranking, best first: what it is, its rowid (the key both
/// rankings share, read in one snapshot) and its id when known.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// Chunk or summary.
    pub kind: HitKind,
    /// Its rowid in its table.
    pub rowid: i64,
    /// Its id; `None` is allowed past the `k`-th row of the text ranking
    /// only (see [`fuse`]).
    pub id: Option<String>,
}

impl From<TextRow> for Ranked {
    fn from(row: TextRow) -> Self {
        Ranked {
            kind: row.kind,
            rowid: row.rowid,
            id: row.id,
        }
    }
}

/// A row's fused score and ranks.
struct Fused {
    score: f64,
    kind: HitKind,
    id: Option<String>,
    text_rank: Option<u32>,
    vector_rank: Option<u32>,
}

/// Fuses two rankings (best first) by RRF; the `k` best, ranks kept, ties
/// by id then kind.
///
/// Rows are matched by `(kind, rowid)`. Every row of `vector`, and the
/// first `k` rows of `text`, must carry their id; a text row past the
/// `k`-th may not: if `vector` lacks it, each of the `k` text rows above it
/// scores strictly more (`1 / (60 + r)` falls with `r`, and a vector rank
/// only adds), so it can neither enter the `k` best nor tie with the last
/// of them, and its id is never compared or returned.
pub fn fuse(text: Vec<Ranked>, vector: Vec<Ranked>, k: usize) -> Vec<Hit> {
    let mut fused: HashMap<(HitKind, i64), Fused> =
        HashMap::with_capacity(text.len() + vector.len());
    // Text first, then vector: each row's sum adds its text term first.
    for (is_text, list) in [(true, text), (false, vector)] {
        for (at, row) in list.into_iter().enumerate() {
            let rank = at as u32 + 1;
            let entry = fused.entry((row.kind, row.rowid)).or_insert(Fused {
                score: 0.0,
                kind: row.kind,
                id: None,
                text_rank: None,
                vector_rank: None,
            });
            entry.score += 1.0 / (RRF_K + f64::from(rank));
            if entry.id.is_none() {
                entry.id = row.id;
            }
            if is_text {
                entry.text_rank = Some(rank);
            } else {
                entry.vector_rank = Some(rank);
            }
        }
    }
    let mut out: Vec<Fused> = fused.into_values().collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.id.cmp(&b.id))
            .then(a.kind.cmp(&b.kind))
    });
    out.truncate(k);
    out.into_iter()
        .map(|row| Hit {
            id: row
                .id
                .expect("a row without an id never reaches the k best (see fuse)"),
            kind: row.kind,
            score: row.score as f32,
            vector_rank: row.vector_rank,
            text_rank: row.text_rank,
            snippet: None,
        })
        .collect()
}

impl Store {
    /// Text and vector search fused by RRF (constant 60), or either alone
    /// (then exactly [`Store::search_text`] with plain words, or
    /// [`Store::search_vector`] by cosine). At least one of `text` and
    /// `vector` is required.
    pub fn search(
        &self,
        text: Option<&str>,
        vector: Option<&[f32]>,
        k: i64,
        filter: &ChunkFilter,
        include_summaries: bool,
    ) -> Result<Vec<Hit>> {
        let k = k.clamp(1, MAX_LIST_LIMIT);
        match (text, vector) {
            (None, None) => Err(Error::invalid(
                "text",
                "give text, vector or both to search by",
            )),
            (Some(text), None) => {
                self.search_text(text, k, Syntax::Words, filter, include_summaries)
            }
            (None, Some(vector)) => {
                self.search_vector(vector, k, Metric::Cosine, filter, include_summaries)
            }
            (Some(text), Some(vector)) => {
                // Both arguments checked before either search runs.
                let fts = match_query(text, Syntax::Words, self.path())?;
                super::vector::Query::new(vector.to_vec(), Metric::Cosine)?;
                let depth = k.max(FUSION_DEPTH);
                // Both rankings in one read transaction: one snapshot, so
                // a rowid names one row in both.
                let (by_vector, by_text) = self.search_vector_with(
                    vector,
                    depth,
                    Metric::Cosine,
                    filter,
                    include_summaries,
                    // The text list needs the ids of its first k rows only
                    // (see `fuse`); the vectors' copy holds most others.
                    |conn, known| {
                        rank_text(
                            conn,
                            &fts,
                            depth,
                            filter,
                            include_summaries,
                            k as usize,
                            known,
                        )
                    },
                )?;
                let by_text = by_text.map_err(|message| Error::invalid("query", message))?;
                let by_text = by_text.into_iter().map(Ranked::from).collect();
                let by_vector = by_vector
                    .into_iter()
                    .map(|(rowid, hit)| Ranked {
                        kind: hit.kind,
                        rowid,
                        id: Some(hit.id),
                    })
                    .collect();
                let mut hits = fuse(by_text, by_vector, k as usize);
                self.add_snippets(&fts, &mut hits)?;
                Ok(hits)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rowid: i64, id: Option<&str>) -> Ranked {
        Ranked {
            kind: HitKind::Chunk,
            rowid,
            id: id.map(str::to_owned),
        }
    }

    fn ranks(hits: &[Hit]) -> Vec<(&str, Option<u32>, Option<u32>)> {
        hits.iter()
            .map(|h| (h.id.as_str(), h.text_rank, h.vector_rank))
            .collect()
    }

    #[test]
    fn rrf_sums_reciprocal_ranks_and_breaks_ties_by_id() {
        let text = vec![row(1, Some("a")), row(2, Some("b")), row(3, Some("c"))];
        let vector = vec![row(3, Some("c")), row(4, Some("d")), row(1, Some("a"))];
        let fused = fuse(text, vector, 10);
        // a: 1/61 + 1/63 = c: 1/63 + 1/61, tied: by id. Then b (1/62) = d (1/62).
        assert_eq!(
            ranks(&fused),
            [
                ("a", Some(1), Some(3)),
                ("c", Some(3), Some(1)),
                ("b", Some(2), None),
                ("d", None, Some(2)),
            ]
        );
        let want = (1.0 / 61.0 + 1.0 / 63.0) as f32;
        assert_eq!(fused[0].score, want);
        assert_eq!(fuse(vec![row(9, Some("x"))], vec![], 1).len(), 1);
    }

    #[test]
    fn rows_are_matched_by_kind_and_rowid() {
        let summary = Ranked {
            kind: HitKind::Summary,
            ..row(1, Some("s"))
        };
        // Chunk 1 and summary 1 are two rows; the vector's id names chunk 1.
        let fused = fuse(
            vec![row(1, Some("a")), summary],
            vec![row(1, Some("a"))],
            10,
        );
        assert_eq!(
            ranks(&fused),
            [("a", Some(1), Some(1)), ("s", Some(2), None)]
        );
    }

    #[test]
    fn text_rows_past_k_need_no_id_unless_the_vector_list_names_them() {
        // k = 2: text rows 3.. carry no id; row 30 is ranked 1st by vector,
        // so its id comes from there and it wins; rows 4 and 5 cannot
        // reach the 2 best and are never named.
        let text = vec![
            row(10, Some("t1")),
            row(20, Some("t2")),
            row(30, None),
            row(40, None),
            row(50, None),
        ];
        let vector = vec![row(30, Some("v30")), row(60, Some("v60"))];
        let fused = fuse(text, vector, 2);
        assert_eq!(
            ranks(&fused),
            [("v30", Some(3), Some(1)), ("t1", Some(1), None)]
        );
        // k = 3: t2 and v60 tie at 1/62, cut by id.
        let text = vec![row(10, Some("t1")), row(20, Some("t2")), row(30, None)];
        let fused = fuse(text, vec![row(30, Some("v30")), row(60, Some("v60"))], 3);
        assert_eq!(
            ranks(&fused),
            [
                ("v30", Some(3), Some(1)),
                ("t1", Some(1), None),
                ("t2", Some(2), None),
            ]
        );
    }
}
