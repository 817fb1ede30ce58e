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

use std::collections::HashMap;

use super::api::{Hit, HitKind};
use super::text::{match_query, rank_text, Syntax};
use super::vector::Metric;
use crate::chunks::{ChunkFilter, MAX_LIST_LIMIT};
use crate::db::store::Store;
use crate::error::{Error, Result};

/// The RRF constant (Cormack et al. 2009).
pub const RRF_K: f64 = 60.0;

/// How deep each list is read when fusing (at least `k`).
pub const FUSION_DEPTH: i64 = 100;

/// Fuses two rankings (best first) by RRF; the `k` best, ranks kept.
pub fn fuse(text: Vec<Hit>, vector: Vec<Hit>, k: usize) -> Vec<Hit> {
    let mut fused: HashMap<(HitKind, String), (f64, Hit)> = HashMap::new();
    for hit in text.into_iter().chain(vector) {
        let rank = hit.text_rank.or(hit.vector_rank).unwrap_or(u32::MAX);
        let add = 1.0 / (RRF_K + f64::from(rank));
        let entry = fused.entry((hit.kind, hit.id.clone())).or_insert_with(|| {
            (
                0.0,
                Hit {
                    score: 0.0,
                    ..hit.clone()
                },
            )
        });
        entry.0 += add;
        entry.1.text_rank = entry.1.text_rank.or(hit.text_rank);
        entry.1.vector_rank = entry.1.vector_rank.or(hit.vector_rank);
    }
    let mut out: Vec<(f64, Hit)> = fused.into_values().collect();
    out.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1.id.cmp(&b.1.id))
            .then(a.1.kind.cmp(&b.1.kind))
    });
    out.truncate(k);
    out.into_iter()
        .map(|(score, mut hit)| {
            hit.score = score as f32;
            hit
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
                // Both rankings in one read transaction: one snapshot.
                let (by_vector, by_text) = self.search_vector_with(
                    vector,
                    depth,
                    Metric::Cosine,
                    filter,
                    include_summaries,
                    |conn| rank_text(conn, &fts, depth, filter, include_summaries, false),
                )?;
                let by_text = by_text.map_err(|message| Error::invalid("query", message))?;
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

    fn hit(id: &str, text_rank: Option<u32>, vector_rank: Option<u32>) -> Hit {
        Hit {
            id: id.into(),
            kind: HitKind::Chunk,
            score: 9.0,
            vector_rank,
            text_rank,
            snippet: None,
        }
    }

    #[test]
    fn rrf_sums_reciprocal_ranks_and_breaks_ties_by_id() {
        let text = vec![
            hit("a", Some(1), None),
            hit("b", Some(2), None),
            hit("c", Some(3), None),
        ];
        let vector = vec![
            hit("c", None, Some(1)),
            hit("d", None, Some(2)),
            hit("a", None, Some(3)),
        ];
        let fused = fuse(text, vector, 10);
        let got: Vec<(&str, Option<u32>, Option<u32>)> = fused
            .iter()
            .map(|h| (h.id.as_str(), h.text_rank, h.vector_rank))
            .collect();
        // a: 1/61 + 1/63 = c: 1/63 + 1/61, tied: by id. Then b (1/62) = d (1/62).
        assert_eq!(
            got,
            [
                ("a", Some(1), Some(3)),
                ("c", Some(3), Some(1)),
                ("b", Some(2), None),
                ("d", None, Some(2)),
            ]
        );
        let want = (1.0 / 61.0 + 1.0 / 63.0) as f32;
        assert_eq!(fused[0].score, want);
        assert_eq!(fuse(vec![hit("x", Some(1), None)], vec![], 1).len(), 1);
    }
}
