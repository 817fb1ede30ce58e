//! `Store.search_vector`, `Store.search_text`, `Store.search` and
//! `memtree.Hit`: argument
//! conversion, then the whole search (snapshot, filter and scan, or the
//! FTS5 query) with the GIL released.

use std::hash::{Hash, Hasher};

use pyo3::prelude::*;

use super::convert::{self, vector};
use crate::chunks::ChunkFilter;
use crate::db::store::Store;
use crate::search::{Hit, Metric, Syntax};

/// One search result (frozen; compared by value).
#[pyclass(frozen, eq, name = "Hit", module = "memtree")]
#[derive(Debug, Clone, PartialEq)]
pub struct PyHit {
    /// The chunk's or summary's id.
    #[pyo3(get)]
    id: String,
    /// What the id names.
    #[pyo3(get)]
    kind: &'static str,
    /// Higher is better: the cosine similarity, the dot product or the
    /// negated Euclidean distance.
    #[pyo3(get)]
    score: f64,
    /// 1-based rank in the vector ranking, if the vector search found it.
    #[pyo3(get)]
    vector_rank: Option<u32>,
    /// 1-based rank in the text ranking (None for a vector search).
    #[pyo3(get)]
    text_rank: Option<u32>,
    /// A short excerpt of the content around the best text match, ``…``
    /// where text was cut (None for a vector search).
    #[pyo3(get)]
    snippet: Option<String>,
}

impl From<Hit> for PyHit {
    fn from(hit: Hit) -> Self {
        PyHit {
            id: hit.id,
            kind: hit.kind.as_str(),
            score: f64::from(hit.score),
            vector_rank: hit.vector_rank,
            text_rank: hit.text_rank,
            snippet: hit.snippet,
        }
    }
}

#[pymethods]
impl PyHit {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        // Python's own reprs, so the text reads as the constructor would.
        let repr = |v: Bound<'_, PyAny>| -> PyResult<String> { Ok(v.repr()?.to_string()) };
        Ok(format!(
            "Hit(id={}, kind={}, score={}, vector_rank={}, text_rank={}, snippet={})",
            repr(self.id.clone().into_pyobject(py)?.into_any())?,
            repr(self.kind.into_pyobject(py)?.into_any())?,
            repr(self.score.into_pyobject(py)?.into_any())?,
            repr(self.vector_rank.into_pyobject(py)?)?,
            repr(self.text_rank.into_pyobject(py)?)?,
            repr(self.snippet.clone().into_pyobject(py)?)?,
        ))
    }

    fn __hash__(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            &self.id,
            self.kind,
            self.score.to_bits(),
            self.vector_rank,
            self.text_rank,
            &self.snippet,
        )
            .hash(&mut h);
        h.finish()
    }
}

/// `Store.search_vector` after its keyword arguments are converted.
pub fn search_vector(
    py: Python<'_>,
    store: &Store,
    vector: &Bound<'_, PyAny>,
    k: i64,
    filter: &ChunkFilter,
    metric: &str,
    include_summaries: bool,
) -> PyResult<Vec<PyHit>> {
    let metric = Metric::parse(metric)?;
    let query = vector::floats(vector, "vector")?;
    let hits = py.detach(|| store.search_vector(&query, k, metric, filter, include_summaries))?;
    Ok(hits.into_iter().map(PyHit::from).collect())
}

/// `Store.search_text` after its keyword arguments are converted.
pub fn search_text(
    py: Python<'_>,
    store: &Store,
    query: &str,
    k: i64,
    filter: &ChunkFilter,
    syntax: &str,
    include_summaries: bool,
) -> PyResult<Vec<PyHit>> {
    let syntax = Syntax::parse(syntax)?;
    let hits = py.detach(|| store.search_text(query, k, syntax, filter, include_summaries))?;
    Ok(hits.into_iter().map(PyHit::from).collect())
}

/// `Store.search` after its keyword arguments are converted: `text` a
/// `str` or None, `vector` a float buffer, an iterable of floats or None.
pub fn search(
    py: Python<'_>,
    store: &Store,
    text: Option<&Bound<'_, PyAny>>,
    vector: Option<&Bound<'_, PyAny>>,
    k: i64,
    filter: &ChunkFilter,
    include_summaries: bool,
) -> PyResult<Vec<PyHit>> {
    let text = text
        .filter(|t| !t.is_none())
        .map(|t| convert::text(t, "text"))
        .transpose()?;
    let vector = vector
        .filter(|v| !v.is_none())
        .map(|v| vector::floats(v, "vector"))
        .transpose()?;
    let hits = py.detach(|| {
        store.search(
            text.as_deref(),
            vector.as_deref(),
            k,
            filter,
            include_summaries,
        )
    })?;
    Ok(hits.into_iter().map(PyHit::from).collect())
}
