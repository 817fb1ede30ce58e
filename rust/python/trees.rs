//! `memtree.Trees` (`store.trees`), `memtree.Tree`, `memtree.Summary` and
//! `memtree.TreeBuffer`: argument conversion and GIL release around the core's
//! summary trees (`crate::trees`).
//!
//! Embeddings cross in one place each way ([`vector_in`], [`embedding_in`],
//! [`embedding_out`]), with the same conversions as a chunk's.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;

use super::chunk::PyChunk;
use super::convert::{self, arg};
use super::store::PyStore;
use crate::clock::now_ms;
use crate::store::Store;
use crate::trees::{Buffer, Node, Seal, Summary, Tree, TreeKind, TreeStatus};

/// `memtree.TreeKind` and `memtree.TreeStatus`, imported once.
static ENUMS: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();

fn enums(py: Python<'_>) -> PyResult<&(Py<PyAny>, Py<PyAny>)> {
    ENUMS.get_or_try_init(py, || {
        let module = py.import("memtree._types")?;
        Ok((
            module.getattr("TreeKind")?.unbind(),
            module.getattr("TreeStatus")?.unbind(),
        ))
    })
}

fn kind_to_py(py: Python<'_>, kind: TreeKind) -> PyResult<Bound<'_, PyAny>> {
    enums(py)?.0.bind(py).call1((kind.as_str(),))
}

fn status_to_py(py: Python<'_>, status: TreeStatus) -> PyResult<Bound<'_, PyAny>> {
    enums(py)?.1.bind(py).call1((status.as_str(),))
}

/// A tree kind from a `TreeKind` member or its string value.
pub(super) fn tree_kind(value: &Bound<'_, PyAny>, field: &str) -> PyResult<TreeKind> {
    Ok(TreeKind::parse_field(&convert::text(value, field)?, field)?)
}

fn kind_arg(value: &Bound<'_, PyAny>) -> PyResult<TreeKind> {
    tree_kind(value, "kind")
}

fn level_arg(value: &Bound<'_, PyAny>) -> PyResult<i64> {
    convert::int64(value, "level")
}

fn tree_id_arg(value: &Bound<'_, PyAny>) -> PyResult<String> {
    convert::text(value, "tree_id")
}

fn scope_arg(value: &Bound<'_, PyAny>) -> PyResult<String> {
    convert::text(value, "scope")
}

/// A float vector for `set_summary_embedding`, as `set_chunk_embedding` takes it.
pub(super) fn vector_in(value: &Bound<'_, PyAny>) -> PyResult<Option<Vec<f32>>> {
    convert::vector(value, "vector")
}

/// The `embedding=` of `Summary(...)`, as `Chunk(...)` takes it.
fn embedding_in(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<f32>>> {
    convert::embedding(value)
}

/// A stored embedding as `Chunk.embedding` returns one: a tuple of floats.
fn embedding_out<'py>(
    py: Python<'py>,
    values: Option<&Vec<f32>>,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    values
        .map(|v| PyTuple::new(py, v.iter().map(|&x| f64::from(x))))
        .transpose()
}

/// One summary tree (see the stub for documentation).
#[pyclass(frozen, eq, name = "Tree", module = "memtree")]
#[derive(Debug, Clone, PartialEq)]
pub struct PyTree {
    inner: Tree,
}

#[pymethods]
impl PyTree {
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        kind_to_py(py, self.inner.kind)
    }
    #[getter]
    fn scope(&self) -> &str {
        &self.inner.scope
    }
    #[getter]
    fn root_id(&self) -> Option<&str> {
        self.inner.root_id.as_deref()
    }
    #[getter]
    fn max_level(&self) -> i64 {
        self.inner.max_level
    }
    #[getter]
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        status_to_py(py, self.inner.status)
    }
    #[getter]
    fn created_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_ms(py, self.inner.created_at_ms)
    }
    #[getter]
    fn last_sealed_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        convert::opt_from_ms(py, self.inner.last_sealed_at_ms)
    }
    fn __repr__(&self) -> String {
        format!(
            "Tree(id={:?}, kind={:?}, scope={:?}, max_level={})",
            self.inner.id,
            self.inner.kind.as_str(),
            self.inner.scope,
            self.inner.max_level
        )
    }
}

/// One sealed summary (see the stub for documentation).
#[pyclass(frozen, eq, name = "Summary", module = "memtree")]
#[derive(Debug, Clone, PartialEq)]
pub struct PySummary {
    pub(super) inner: Summary,
}

#[pymethods]
impl PySummary {
    #[new]
    #[pyo3(signature = (
        id, tree_id, level, content, time_range_start, time_range_end, *,
        tree_kind=None, parent_id=None, child_ids=None, token_count=0, entities=None,
        topics=None, score=0.0, sealed_at=None, deleted=false, embedding=None,
        content_path=None, content_sha256=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        #[pyo3(from_py_with = arg::id)] id: String,
        #[pyo3(from_py_with = tree_id_arg)] tree_id: String,
        #[pyo3(from_py_with = level_arg)] level: i64,
        #[pyo3(from_py_with = arg::content)] content: String,
        time_range_start: &Bound<'_, PyAny>,
        time_range_end: &Bound<'_, PyAny>,
        tree_kind: Option<&Bound<'_, PyAny>>,
        parent_id: Option<&Bound<'_, PyAny>>,
        child_ids: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::token_count)] token_count: i64,
        entities: Option<&Bound<'_, PyAny>>,
        topics: Option<&Bound<'_, PyAny>>,
        score: f64,
        sealed_at: Option<&Bound<'_, PyAny>>,
        deleted: bool,
        embedding: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_content_path)] content_path: Option<String>,
        #[pyo3(from_py_with = arg::opt_content_sha256)] content_sha256: Option<String>,
    ) -> PyResult<Self> {
        let inner = Summary {
            id,
            tree_id,
            tree_kind: tree_kind
                .map(|k| self::tree_kind(k, "tree_kind"))
                .transpose()?
                .unwrap_or(TreeKind::Source),
            level,
            parent_id: parent_id
                .map(|p| convert::text(p, "parent_id"))
                .transpose()?,
            child_ids: opt_strs(child_ids, "child_ids")?,
            content,
            token_count,
            entities: opt_strs(entities, "entities")?,
            topics: opt_strs(topics, "topics")?,
            time_range_start_ms: convert::time_or_ms(time_range_start, "time_range_start")?,
            time_range_end_ms: convert::time_or_ms(time_range_end, "time_range_end")?,
            score,
            sealed_at_ms: convert::opt_time_or_ms(sealed_at, "sealed_at")?.unwrap_or_else(now_ms),
            deleted,
            embedding: embedding_in(embedding)?,
            content_path,
            content_sha256,
        };
        inner.validate()?;
        Ok(PySummary { inner })
    }

    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    #[getter]
    fn tree_id(&self) -> &str {
        &self.inner.tree_id
    }
    #[getter]
    fn tree_kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        kind_to_py(py, self.inner.tree_kind)
    }
    #[getter]
    fn level(&self) -> i64 {
        self.inner.level
    }
    #[getter]
    fn parent_id(&self) -> Option<&str> {
        self.inner.parent_id.as_deref()
    }
    #[getter]
    fn child_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.inner.child_ids)
    }
    #[getter]
    fn content(&self) -> &str {
        &self.inner.content
    }
    #[getter]
    fn token_count(&self) -> i64 {
        self.inner.token_count
    }
    #[getter]
    fn entities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.inner.entities)
    }
    #[getter]
    fn topics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.inner.topics)
    }
    #[getter]
    fn time_range_start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_ms(py, self.inner.time_range_start_ms)
    }
    #[getter]
    fn time_range_end<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_ms(py, self.inner.time_range_end_ms)
    }
    #[getter]
    fn score(&self) -> f64 {
        self.inner.score
    }
    #[getter]
    fn sealed_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_ms(py, self.inner.sealed_at_ms)
    }
    #[getter]
    fn deleted(&self) -> bool {
        self.inner.deleted
    }
    #[getter]
    fn embedding<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        embedding_out(py, self.inner.embedding.as_ref())
    }
    #[getter]
    fn content_path(&self) -> Option<&str> {
        self.inner.content_path.as_deref()
    }
    #[getter]
    fn content_sha256(&self) -> Option<&str> {
        self.inner.content_sha256.as_deref()
    }
    fn __repr__(&self) -> String {
        format!(
            "Summary(id={:?}, tree_id={:?}, level={}, children={}, deleted={})",
            self.inner.id,
            self.inner.tree_id,
            self.inner.level,
            self.inner.child_ids.len(),
            if self.inner.deleted { "True" } else { "False" }
        )
    }
}

/// One unsealed buffer (see the stub for documentation).
#[pyclass(frozen, eq, name = "TreeBuffer", module = "memtree")]
#[derive(Debug, Clone, PartialEq)]
pub struct PyBuffer {
    inner: Buffer,
}

#[pymethods]
impl PyBuffer {
    #[getter]
    fn tree_id(&self) -> &str {
        &self.inner.tree_id
    }
    #[getter]
    fn level(&self) -> i64 {
        self.inner.level
    }
    #[getter]
    fn item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.inner.item_ids)
    }
    #[getter]
    fn token_sum(&self) -> i64 {
        self.inner.token_sum
    }
    #[getter]
    fn oldest_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        convert::opt_from_ms(py, self.inner.oldest_at_ms)
    }
    #[getter]
    fn updated_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        convert::opt_from_ms(py, self.inner.updated_at_ms)
    }
    #[getter]
    fn version(&self) -> String {
        self.inner.version()
    }
    #[getter]
    fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    #[getter]
    fn should_seal(&self) -> bool {
        self.inner.should_seal()
    }
    fn __repr__(&self) -> String {
        format!(
            "TreeBuffer(tree_id={:?}, level={}, items={}, token_sum={})",
            self.inner.tree_id,
            self.inner.level,
            self.inner.item_ids.len(),
            self.inner.token_sum
        )
    }
}

/// The summary trees of one store (see the stub for documentation).
#[pyclass(frozen, name = "Trees", module = "memtree")]
pub struct PyTrees {
    store: Py<PyStore>,
}

impl PyTrees {
    /// The trees of `store`.
    pub fn new(store: &Bound<'_, PyStore>) -> Self {
        PyTrees {
            store: store.clone().unbind(),
        }
    }

    fn core(&self) -> &Store {
        &self.store.get().inner
    }
}

fn trees_out(trees: Vec<Tree>) -> Vec<PyTree> {
    trees.into_iter().map(|inner| PyTree { inner }).collect()
}

#[pymethods]
impl PyTrees {
    #[pyo3(signature = (kind, scope, *, id=None, created_at=None))]
    fn create(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = kind_arg)] kind: TreeKind,
        #[pyo3(from_py_with = scope_arg)] scope: String,
        id: Option<&Bound<'_, PyAny>>,
        created_at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTree> {
        let id = id.map(|v| convert::text(v, "id")).transpose()?;
        let created_at_ms = convert::opt_time_or_ms(created_at, "created_at")?;
        let trees = self.core().trees();
        let inner = py.detach(|| match id {
            None => trees.create_new(kind, &scope, created_at_ms),
            Some(id) => trees.create(&Tree {
                id,
                kind,
                scope: scope.clone(),
                root_id: None,
                max_level: 0,
                status: TreeStatus::Active,
                created_at_ms: created_at_ms.unwrap_or_else(now_ms),
                last_sealed_at_ms: None,
            }),
        })?;
        Ok(PyTree { inner })
    }

    fn get(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<PyTree>> {
        let tree = py.detach(|| self.core().trees().get(&id))?;
        Ok(tree.map(|inner| PyTree { inner }))
    }

    fn get_by_scope(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = kind_arg)] kind: TreeKind,
        #[pyo3(from_py_with = scope_arg)] scope: String,
    ) -> PyResult<Option<PyTree>> {
        let tree = py.detach(|| self.core().trees().get_by_scope(kind, &scope))?;
        Ok(tree.map(|inner| PyTree { inner }))
    }

    fn get_or_create(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = kind_arg)] kind: TreeKind,
        #[pyo3(from_py_with = scope_arg)] scope: String,
    ) -> PyResult<PyTree> {
        let inner = py.detach(|| self.core().trees().get_or_create(kind, &scope))?;
        Ok(PyTree { inner })
    }

    fn list(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = kind_arg)] kind: TreeKind,
    ) -> PyResult<Vec<PyTree>> {
        Ok(trees_out(
            py.detach(|| self.core().trees().list_by_kind(kind))?,
        ))
    }

    fn insert_summary(&self, py: Python<'_>, summary: PyRef<'_, PySummary>) -> PyResult<bool> {
        let summary = summary.inner.clone();
        Ok(py.detach(|| self.core().trees().insert_summary(&summary))?)
    }

    fn get_summary(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<PySummary>> {
        let found = py.detach(|| self.core().trees().get_summary(&id))?;
        Ok(found.map(|inner| PySummary { inner }))
    }

    fn list_summaries(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = tree_id_arg)] tree_id: String,
        #[pyo3(from_py_with = level_arg)] level: i64,
    ) -> PyResult<Vec<PySummary>> {
        let rows = py.detach(|| self.core().trees().list_summaries(&tree_id, level))?;
        Ok(rows.into_iter().map(|inner| PySummary { inner }).collect())
    }

    fn count_summaries(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = tree_id_arg)] tree_id: String,
    ) -> PyResult<i64> {
        Ok(py.detach(|| self.core().trees().count_summaries(&tree_id))?)
    }

    fn delete_summary(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<bool> {
        Ok(py.detach(|| self.core().trees().delete_summary(&id))?)
    }

    fn set_summary_embedding(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
        vector: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let vector = vector_in(vector)?;
        Ok(py.detach(|| {
            self.core()
                .trees()
                .set_summary_embedding(&id, vector.as_deref())
        })?)
    }

    fn get_summary_embedding<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let found = py.detach(|| self.core().trees().get_summary_embedding(&id))?;
        found
            .map(|v| super::vector::float_array(py, &v))
            .transpose()
    }

    fn get_buffer(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = tree_id_arg)] tree_id: String,
        #[pyo3(from_py_with = level_arg)] level: i64,
    ) -> PyResult<PyBuffer> {
        let inner = py.detach(|| self.core().trees().get_buffer(&tree_id, level))?;
        Ok(PyBuffer { inner })
    }

    fn list_stale_buffers(
        &self,
        py: Python<'_>,
        older_than: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<PyBuffer>> {
        let ms = convert::time_or_ms(older_than, "older_than")?;
        let rows = py.detach(|| self.core().trees().list_stale_buffers(ms))?;
        Ok(rows.into_iter().map(|inner| PyBuffer { inner }).collect())
    }

    fn append_to_buffer(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = tree_id_arg)] tree_id: String,
        #[pyo3(from_py_with = level_arg)] level: i64,
        item_ids: &Bound<'_, PyAny>,
        tokens: &Bound<'_, PyAny>,
        oldest: &Bound<'_, PyAny>,
    ) -> PyResult<PyBuffer> {
        let item_ids = convert::strs(item_ids, "item_ids")?;
        let tokens = ints(tokens, "tokens")?;
        let oldest_ms = convert::time_or_ms(oldest, "oldest")?;
        let inner = py.detach(|| {
            self.core()
                .trees()
                .append_to_buffer(&tree_id, level, &item_ids, &tokens, oldest_ms)
        })?;
        Ok(PyBuffer { inner })
    }

    #[pyo3(signature = (
        tree_id, level, version, *, content, token_count=0, id=None, entities=None,
        topics=None, time_range=None, score=None, sealed_at=None, embedding=None,
        content_path=None, content_sha256=None, enqueue_follow_ups=true
    ))]
    #[allow(clippy::too_many_arguments)]
    fn seal(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = tree_id_arg)] tree_id: String,
        #[pyo3(from_py_with = level_arg)] level: i64,
        version: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::content)] content: String,
        #[pyo3(from_py_with = arg::token_count)] token_count: i64,
        id: Option<&Bound<'_, PyAny>>,
        entities: Option<&Bound<'_, PyAny>>,
        topics: Option<&Bound<'_, PyAny>>,
        time_range: Option<&Bound<'_, PyAny>>,
        score: Option<f64>,
        sealed_at: Option<&Bound<'_, PyAny>>,
        embedding: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_content_path)] content_path: Option<String>,
        #[pyo3(from_py_with = arg::opt_content_sha256)] content_sha256: Option<String>,
        enqueue_follow_ups: bool,
    ) -> PyResult<PySummary> {
        let time_range_ms = match time_range {
            None => None,
            Some(range) => {
                let pair = range
                    .cast::<PyTuple>()
                    .ok()
                    .filter(|t| t.len() == 2)
                    .ok_or_else(|| {
                        pyo3::exceptions::PyTypeError::new_err(
                            "time_range: expected a (start, end) tuple of datetimes or int milliseconds",
                        )
                    })?;
                Some((
                    convert::time_or_ms(&pair.get_item(0)?, "time_range[0]")?,
                    convert::time_or_ms(&pair.get_item(1)?, "time_range[1]")?,
                ))
            }
        };
        let seal = Seal {
            tree_id,
            level,
            version: convert::text(version, "version")?,
            id: id.map(|v| convert::text(v, "id")).transpose()?,
            content,
            token_count,
            entities: opt_strs(entities, "entities")?,
            topics: opt_strs(topics, "topics")?,
            time_range_ms,
            score,
            sealed_at_ms: convert::opt_time_or_ms(sealed_at, "sealed_at")?,
            embedding: embedding_in(embedding)?,
            content_path,
            content_sha256,
            enqueue_follow_ups,
        };
        let inner = py.detach(|| self.core().trees().seal(&seal))?;
        Ok(PySummary { inner })
    }

    #[pyo3(signature = (summary_id, depth=None))]
    fn walk<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::id)] summary_id: String,
        depth: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let depth = depth.map(|d| convert::int64(d, "depth")).transpose()?;
        let nodes = py.detach(|| self.core().trees().walk(&summary_id, depth))?;
        nodes
            .into_iter()
            .map(|node| match node {
                Node::Summary(inner) => Ok(Bound::new(py, PySummary { inner })?.into_any()),
                Node::Chunk(inner) => Ok(Bound::new(py, PyChunk { inner })?.into_any()),
            })
            .collect()
    }

    fn ancestors(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Vec<PySummary>> {
        let rows = py.detach(|| self.core().trees().ancestors(&id))?;
        Ok(rows.into_iter().map(|inner| PySummary { inner }).collect())
    }

    fn __repr__(&self) -> String {
        format!("Trees({})", self.core().path().display())
    }
}

/// [`convert::strs`] for an optional argument; `None` is empty.
fn opt_strs(value: Option<&Bound<'_, PyAny>>, field: &str) -> PyResult<Vec<String>> {
    value.map_or(Ok(Vec::new()), |v| convert::strs(v, field))
}

/// 64-bit integers from an iterable of `int` (not a `str`).
fn ints(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Vec<i64>> {
    let iter = value.try_iter().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!("{field}: expected an iterable of int"))
    })?;
    iter.enumerate()
        .map(|(i, item)| convert::int64(&item?, &format!("{field}[{i}]")))
        .collect()
}

/// Adds the classes to `m`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTree>()?;
    m.add_class::<PySummary>()?;
    m.add_class::<PyBuffer>()?;
    m.add_class::<PyTrees>()?;
    Ok(())
}
