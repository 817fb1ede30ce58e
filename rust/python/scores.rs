//! `memtree.Scores` (`store.scores`): argument conversion and GIL release
//! around the core's scores, entity index and hotness (`crate::scores`).
//! Rows cross as the NamedTuples `memtree.Score`, `memtree.Entity`,
//! `memtree.EntityHit` and `memtree.Hotness` (defined in `memtree._types`):
//! read by attribute, so any object with those attributes is taken.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use super::convert::{self, arg};
use super::store::PyStore;
use crate::db::store::Store;
use crate::scores::{Entity, EntityHit, Hotness, ScoreRow};
use crate::sys::clock::now_ms;

/// `memtree.Score`, `memtree.EntityHit` and `memtree.Hotness`, imported once.
static TYPES: PyOnceLock<[Py<PyAny>; 3]> = PyOnceLock::new();

fn types(py: Python<'_>) -> PyResult<&[Py<PyAny>; 3]> {
    TYPES.get_or_try_init(py, || {
        let module = py.import("memtree._types")?;
        Ok([
            module.getattr("Score")?.unbind(),
            module.getattr("EntityHit")?.unbind(),
            module.getattr("Hotness")?.unbind(),
        ])
    })
}

/// `obj.name`, named `field.name` in the error when missing.
fn attr<'py>(obj: &Bound<'py, PyAny>, name: &str, field: &str) -> PyResult<Bound<'py, PyAny>> {
    obj.getattr(name).map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{field}: expected a memtree.{} (no attribute {name:?}), got {}",
            match field {
                "score" => "Score",
                "hotness" => "Hotness",
                _ => "Entity",
            },
            convert::type_name(obj)
        ))
    })
}

fn float_attr(obj: &Bound<'_, PyAny>, name: &str, field: &str) -> PyResult<f64> {
    attr(obj, name, field)?.extract::<f64>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!("{field}.{name}: expected a float"))
    })
}

fn opt_float_attr(obj: &Bound<'_, PyAny>, name: &str, field: &str) -> PyResult<Option<f64>> {
    let value = attr(obj, name, field)?;
    if value.is_none() {
        return Ok(None);
    }
    float_attr(obj, name, field).map(Some)
}

fn text_attr(obj: &Bound<'_, PyAny>, name: &str, field: &str) -> PyResult<String> {
    convert::text(&attr(obj, name, field)?, &format!("{field}.{name}"))
}

fn opt_text_attr(obj: &Bound<'_, PyAny>, name: &str, field: &str) -> PyResult<Option<String>> {
    let value = attr(obj, name, field)?;
    if value.is_none() {
        return Ok(None);
    }
    convert::text(&value, &format!("{field}.{name}")).map(Some)
}

fn int_attr(obj: &Bound<'_, PyAny>, name: &str, field: &str) -> PyResult<i64> {
    convert::int64(&attr(obj, name, field)?, &format!("{field}.{name}"))
}

fn bool_attr(obj: &Bound<'_, PyAny>, name: &str, field: &str) -> PyResult<bool> {
    attr(obj, name, field)?.extract::<bool>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!("{field}.{name}: expected a bool"))
    })
}

fn opt_time_attr(obj: &Bound<'_, PyAny>, name: &str, field: &str) -> PyResult<Option<i64>> {
    let value = attr(obj, name, field)?;
    if value.is_none() {
        return Ok(None);
    }
    convert::time_or_ms(&value, &format!("{field}.{name}")).map(Some)
}

fn score_in(obj: &Bound<'_, PyAny>) -> PyResult<ScoreRow> {
    let f = "score";
    Ok(ScoreRow {
        chunk_id: text_attr(obj, "chunk_id", f)?,
        total: float_attr(obj, "total", f)?,
        token_count_signal: float_attr(obj, "token_count_signal", f)?,
        unique_words_signal: float_attr(obj, "unique_words_signal", f)?,
        metadata_weight: float_attr(obj, "metadata_weight", f)?,
        source_weight: float_attr(obj, "source_weight", f)?,
        interaction_weight: float_attr(obj, "interaction_weight", f)?,
        entity_density: float_attr(obj, "entity_density", f)?,
        llm_importance: float_attr(obj, "llm_importance", f)?,
        llm_importance_reason: opt_text_attr(obj, "llm_importance_reason", f)?,
        dropped: bool_attr(obj, "dropped", f)?,
        reason: opt_text_attr(obj, "reason", f)?,
        computed_at_ms: opt_time_attr(obj, "computed_at", f)?.unwrap_or_else(now_ms),
    })
}

fn score_out<'py>(py: Python<'py>, s: ScoreRow) -> PyResult<Bound<'py, PyAny>> {
    // Thirteen fields: past the largest tuple PyO3 converts, so the
    // arguments are built one by one.
    let args = pyo3::types::PyTuple::new(
        py,
        [
            s.chunk_id.into_pyobject(py)?.into_any(),
            s.total.into_pyobject(py)?.into_any(),
            s.token_count_signal.into_pyobject(py)?.into_any(),
            s.unique_words_signal.into_pyobject(py)?.into_any(),
            s.metadata_weight.into_pyobject(py)?.into_any(),
            s.source_weight.into_pyobject(py)?.into_any(),
            s.interaction_weight.into_pyobject(py)?.into_any(),
            s.entity_density.into_pyobject(py)?.into_any(),
            s.llm_importance.into_pyobject(py)?.into_any(),
            s.llm_importance_reason.into_pyobject(py)?.into_any(),
            pyo3::types::PyBool::new(py, s.dropped)
                .to_owned()
                .into_any(),
            s.reason.into_pyobject(py)?.into_any(),
            convert::from_ms(py, s.computed_at_ms)?,
        ],
    )?;
    types(py)?[0].bind(py).call1(args)
}

fn entities_in(value: &Bound<'_, PyAny>) -> PyResult<Vec<Entity>> {
    if value.is_instance_of::<pyo3::types::PyString>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "entities: expected an iterable of memtree.Entity, got str",
        ));
    }
    let iter = value.try_iter().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err("entities: expected an iterable of memtree.Entity")
    })?;
    iter.enumerate()
        .map(|(i, item)| {
            let item = item?;
            let f = format!("entities[{i}]");
            Ok(Entity {
                entity_id: text_attr(&item, "entity_id", &f)?,
                entity_kind: text_attr(&item, "entity_kind", &f)?,
                surface: text_attr(&item, "surface", &f)?,
                score: float_attr(&item, "score", &f)?,
                is_user: bool_attr(&item, "is_user", &f)?,
            })
        })
        .collect()
}

fn hit_out<'py>(py: Python<'py>, h: EntityHit) -> PyResult<Bound<'py, PyAny>> {
    let timestamp = convert::from_ms(py, h.timestamp_ms)?;
    types(py)?[1].bind(py).call1((
        h.entity_id,
        h.node_id,
        h.node_kind,
        h.entity_kind,
        h.surface,
        h.score,
        timestamp,
        h.tree_id,
        h.is_user,
    ))
}

fn hotness_in(obj: &Bound<'_, PyAny>) -> PyResult<Hotness> {
    let f = "hotness";
    Ok(Hotness {
        entity_id: text_attr(obj, "entity_id", f)?,
        mention_count_30d: int_attr(obj, "mention_count_30d", f)?,
        distinct_sources: int_attr(obj, "distinct_sources", f)?,
        last_seen_ms: opt_time_attr(obj, "last_seen", f)?,
        query_hits_30d: int_attr(obj, "query_hits_30d", f)?,
        graph_centrality: opt_float_attr(obj, "graph_centrality", f)?,
        ingests_since_check: int_attr(obj, "ingests_since_check", f)?,
        last_hotness: opt_float_attr(obj, "last_hotness", f)?,
        last_updated_ms: opt_time_attr(obj, "last_updated", f)?.unwrap_or_else(now_ms),
    })
}

fn hotness_out<'py>(py: Python<'py>, h: Hotness) -> PyResult<Bound<'py, PyAny>> {
    let last_seen = convert::opt_from_ms(py, h.last_seen_ms)?;
    let last_updated = convert::from_ms(py, h.last_updated_ms)?;
    types(py)?[2].bind(py).call1((
        h.entity_id,
        h.mention_count_30d,
        h.distinct_sources,
        last_seen,
        h.query_hits_30d,
        h.graph_centrality,
        h.ingests_since_check,
        h.last_hotness,
        last_updated,
    ))
}

fn opt_tree_id(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    value.map(|v| convert::text(v, "tree_id")).transpose()
}

/// Chunk scores, the entity index and entity hotness of a store
/// (``store.scores``), in OpenHuman's tables and formats; every call is one
/// transaction with the GIL released. Rows cross as :class:`memtree.Score`,
/// :class:`memtree.Entity`, :class:`memtree.EntityHit` and
/// :class:`memtree.Hotness`. A non-finite float, an unknown entity kind or
/// a counter outside 0..2**32-1 is a ``ValueError`` before any write.
#[pyclass(frozen, name = "Scores", module = "memtree")]
pub struct PyScores {
    store: Py<PyStore>,
}

impl PyScores {
    /// The scores of `store`.
    pub fn new(store: &Bound<'_, PyStore>) -> Self {
        PyScores {
            store: store.clone().unbind(),
        }
    }

    fn core(&self) -> &Store {
        &self.store.get().inner
    }
}

#[pymethods]
impl PyScores {
    /// Writes a chunk's score row (all 13 columns), replacing any earlier one.
    fn upsert_score(&self, py: Python<'_>, score: &Bound<'_, PyAny>) -> PyResult<()> {
        let row = score_in(score)?;
        Ok(py.detach(|| self.core().scores().upsert_score(&row))?)
    }

    /// A chunk's score row.
    fn get_score<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::id)] chunk_id: String,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let row = py.detach(|| self.core().scores().get_score(&chunk_id))?;
        row.map(|r| score_out(py, r)).transpose()
    }

    /// How many score rows there are.
    fn count_scores(&self, py: Python<'_>) -> PyResult<i64> {
        Ok(py.detach(|| self.core().scores().count_scores())?)
    }

    /// Writes ``score`` and replaces the entities indexed for its chunk
    /// with ``entities`` (node kind ``"leaf"``, at ``timestamp``, in
    /// ``tree_id``) in ONE transaction: a crash or an I/O error leaves the
    /// old score with its old entities or the new score with the new ones.
    /// Returns how many entities were indexed.
    #[pyo3(signature = (score, entities, *, timestamp, tree_id=None))]
    fn replace_score(
        &self,
        py: Python<'_>,
        score: &Bound<'_, PyAny>,
        entities: &Bound<'_, PyAny>,
        timestamp: &Bound<'_, PyAny>,
        tree_id: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let row = score_in(score)?;
        let entities = entities_in(entities)?;
        let ms = convert::time_or_ms(timestamp, "timestamp")?;
        let tree_id = opt_tree_id(tree_id)?;
        Ok(py.detach(|| {
            self.core()
                .scores()
                .replace_score(&row, &entities, ms, tree_id.as_deref())
        })?)
    }

    /// Indexes entities against a node (``node_kind`` ``"leaf"`` or
    /// ``"summary"``) in one transaction, idempotent per (entity, node);
    /// returns how many rows were written.
    #[pyo3(
        signature = (node_id, entities, *, timestamp, node_kind="leaf".to_string(), tree_id=None),
        text_signature = "($self, node_id, entities, *, timestamp, node_kind='leaf', tree_id=None)"
    )]
    fn index_entities(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] node_id: String,
        entities: &Bound<'_, PyAny>,
        timestamp: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::node_kind)] node_kind: String,
        tree_id: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let entities = entities_in(entities)?;
        let ms = convert::time_or_ms(timestamp, "timestamp")?;
        let tree_id = opt_tree_id(tree_id)?;
        let node_kind = node_kind.to_owned();
        Ok(py.detach(|| {
            self.core().scores().index_entities(
                &node_id,
                &node_kind,
                &entities,
                ms,
                tree_id.as_deref(),
            )
        })?)
    }

    /// The nodes indexed against an entity, newest first; ``limit``
    /// clamped to 1..10000.
    #[pyo3(signature = (entity_id, limit=100))]
    fn lookup_entity<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::id)] entity_id: String,
        #[pyo3(from_py_with = arg::clamped_limit)] limit: i64,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let hits = py.detach(|| self.core().scores().lookup_entity(&entity_id, limit))?;
        hits.into_iter().map(|h| hit_out(py, h)).collect()
    }

    /// A node's entity ids, highest score first, then newest, then by id.
    fn node_entities(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] node_id: String,
    ) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.core().scores().node_entities(&node_id))?)
    }

    /// Deletes a node's index rows; returns how many.
    fn clear_entities(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] node_id: String,
    ) -> PyResult<usize> {
        Ok(py.detach(|| self.core().scores().clear_entities(&node_id))?)
    }

    /// How many index rows there are.
    fn count_entities(&self, py: Python<'_>) -> PyResult<i64> {
        Ok(py.detach(|| self.core().scores().count_entities())?)
    }

    /// An entity's hotness counters; None when never stored.
    fn get_hotness<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::id)] entity_id: String,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let h = py.detach(|| self.core().scores().get_hotness(&entity_id))?;
        h.map(|h| hotness_out(py, h)).transpose()
    }

    /// An entity's counters, or a zero row stamped now (not stored).
    fn get_or_fresh_hotness<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::id)] entity_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = py.detach(|| self.core().scores().get_or_fresh_hotness(&entity_id))?;
        hotness_out(py, h)
    }

    /// Writes an entity's counters, replacing every field.
    fn upsert_hotness(&self, py: Python<'_>, hotness: &Bound<'_, PyAny>) -> PyResult<()> {
        let h = hotness_in(hotness)?;
        Ok(py.detach(|| self.core().scores().upsert_hotness(&h))?)
    }

    /// How many distinct trees an entity is indexed in (rows without a
    /// tree do not count): the refresh of ``distinct_sources``.
    fn distinct_trees(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] entity_id: String,
    ) -> PyResult<i64> {
        Ok(py.detach(|| self.core().scores().distinct_trees(&entity_id))?)
    }

    /// How many entities have counters.
    fn count_hotness(&self, py: Python<'_>) -> PyResult<i64> {
        Ok(py.detach(|| self.core().scores().count_hotness())?)
    }

    fn __repr__(&self) -> String {
        format!("Scores({})", self.core().path().display())
    }
}

/// Adds the class to `m`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyScores>()
}
