//! `memtree.Trees` (`store.trees`), `memtree.Tree`, `memtree.Summary` and
//! `memtree.TreeBuffer`: argument conversion and GIL release around the core's
//! summary trees (`crate::trees`).
//!
//! Embeddings cross in one place each way ([`vector_in`], [`embedding_in`],
//! [`convert::embedding_tuple`]), with the same conversions as a chunk's.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;

use super::chunk::PyChunk;
use super::convert::{self, arg};
use super::store::PyStore;
use crate::db::packed::Lazy;
use crate::db::store::Store;
use crate::sys::clock::now_ms;
use crate::trees::packed::{PackedSummary, SummaryView};
use crate::trees::{At, Buffer, Seal, Summary, Tree, TreeKind, TreeStatus};

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

/// A float vector for `set_summary_embedding`, as `set_chunk_embedding` takes it.
pub(super) fn vector_in(value: &Bound<'_, PyAny>) -> PyResult<Option<Vec<f32>>> {
    convert::vector(value, "vector")
}

/// The `embedding=` of `Summary(...)`, as `Chunk(...)` takes it.
fn embedding_in(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<f32>>> {
    convert::embedding(value)
}

/// One summary tree (a row of ``mem_tree_trees``).
#[pyclass(frozen, eq, name = "Tree", module = "memtree")]
#[derive(Debug, Clone, PartialEq)]
pub struct PyTree {
    inner: Tree,
}

#[pymethods]
impl PyTree {
    /// Primary key (``"<kind>:<uuid>"`` when memtree made it).
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    /// What the tree groups.
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        kind_to_py(py, self.inner.kind)
    }
    /// What it covers (a source id, an entity id, ``"global"``); unique per kind.
    #[getter]
    fn scope(&self) -> &str {
        &self.inner.scope
    }
    /// The current top summary; None until the first seal.
    #[getter]
    fn root_id(&self) -> Option<&str> {
        self.inner.root_id.as_deref()
    }
    /// The highest level ever sealed (0 before the first seal).
    #[getter]
    fn max_level(&self) -> i64 {
        self.inner.max_level
    }
    /// Active or archived.
    #[getter]
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        status_to_py(py, self.inner.status)
    }
    /// Creation time (UTC).
    #[getter]
    fn created_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_ms(py, self.inner.created_at_ms)
    }
    /// Time of the last seal (UTC).
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

/// One sealed summary (a row of ``mem_tree_summaries``, all 18 columns);
/// immutable and valid once constructed.
///
/// Times are aware datetimes or integer milliseconds since the epoch, as for
/// :class:`Chunk`; ``sealed_at`` defaults to now. ``level`` is 1 (over
/// chunks) to 32. ``embedding`` and the content pointers follow the rules of
/// :class:`Chunk`. Raises ``TypeError`` for a field of the wrong type and
/// ``ValueError`` for a bad value (an empty id, an unknown ``tree_kind``, a
/// level out of range, a non-finite ``score``, a negative ``token_count``,
/// a time range that ends before it starts), each naming the field.
#[pyclass(frozen, eq, name = "Summary", module = "memtree")]
#[derive(Debug, Clone, PartialEq)]
pub struct PySummary {
    /// The record, or (read by a tree walk) its row's bytes: each getter
    /// reads its field straight from them ([`PySummary::view`]), as a
    /// walked `Chunk`'s do; equality and a re-insert decode the record.
    body: Lazy<PackedSummary>,
}

impl From<Summary> for PySummary {
    fn from(summary: Summary) -> Self {
        PySummary {
            body: Lazy::decoded(summary),
        }
    }
}

impl PySummary {
    /// A summary a walk kept as its row's bytes.
    pub fn packed(packed: PackedSummary) -> Self {
        PySummary {
            body: Lazy::packed(packed),
        }
    }

    /// The record (decoded now if it is still the row's bytes).
    pub fn summary(&self) -> &Summary {
        self.body.record()
    }

    /// The fields, borrowed: from the record if it is decoded, else
    /// straight from the row's bytes, so that reading one field (a walk's
    /// `content`) decodes nothing else.
    fn view(&self) -> SummaryView<'_> {
        self.body.view()
    }
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
        #[pyo3(from_py_with = arg::tree_id)] tree_id: String,
        #[pyo3(from_py_with = arg::level)] level: i64,
        #[pyo3(from_py_with = arg::content)] content: String,
        time_range_start: &Bound<'_, PyAny>,
        time_range_end: &Bound<'_, PyAny>,
        tree_kind: Option<&Bound<'_, PyAny>>,
        parent_id: Option<&Bound<'_, PyAny>>,
        child_ids: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::token_count)] token_count: i64,
        entities: Option<&Bound<'_, PyAny>>,
        topics: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::score)] score: f64,
        sealed_at: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::deleted)] deleted: bool,
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
        Ok(PySummary::from(inner))
    }

    /// Primary key.
    #[getter]
    fn id(&self) -> &str {
        self.body.id()
    }
    /// The tree it belongs to.
    #[getter]
    fn tree_id(&self) -> &str {
        self.view().tree_id
    }
    /// That tree's kind (``source`` when not given).
    #[getter]
    fn tree_kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        kind_to_py(py, self.view().tree_kind)
    }
    /// 1 over chunks, 2 over level-1 summaries, and so on.
    #[getter]
    fn level(&self) -> i64 {
        self.view().level
    }
    /// The summary one level up that sealed over this one.
    #[getter]
    fn parent_id(&self) -> Option<&str> {
        self.view().parent_id
    }
    /// The chunk ids (level 1) or summary ids it summarises.
    #[getter]
    fn child_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.view().child_ids.iter())
    }
    /// The summary text (a preview when ``content_path`` is set).
    #[getter]
    fn content(&self) -> &str {
        self.view().content
    }
    /// Tokens of ``content``.
    #[getter]
    fn token_count(&self) -> i64 {
        self.view().token_count
    }
    /// Canonical entity ids (``"<kind>:<value>"``).
    #[getter]
    fn entities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.view().entities)
    }
    /// Topic labels.
    #[getter]
    fn topics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.view().topics)
    }
    /// Time of the oldest child (UTC).
    #[getter]
    fn time_range_start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_ms(py, self.view().time_range_start_ms)
    }
    /// Time of the newest child (UTC).
    #[getter]
    fn time_range_end<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_ms(py, self.view().time_range_end_ms)
    }
    /// The highest score among the children at seal time.
    #[getter]
    fn score(&self) -> f64 {
        self.view().score
    }
    /// Seal time (UTC).
    #[getter]
    fn sealed_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_ms(py, self.view().sealed_at_ms)
    }
    /// The soft-delete flag.
    #[getter]
    fn deleted(&self) -> bool {
        self.view().deleted
    }
    /// The embedding, as :attr:`Chunk.embedding` returns one.
    #[getter]
    fn embedding<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        convert::embedding_tuple(py, self.view().embedding)
    }
    /// Relative path of the full text on disk.
    #[getter]
    fn content_path(&self) -> Option<&str> {
        self.view().content_path
    }
    /// SHA-256 of that file (64 lowercase hex digits).
    #[getter]
    fn content_sha256(&self) -> Option<&str> {
        self.view().content_sha256
    }
    fn __repr__(&self) -> String {
        let view = self.view();
        format!(
            "Summary(id={:?}, tree_id={:?}, level={}, children={}, deleted={})",
            self.id(),
            view.tree_id,
            view.level,
            view.child_ids.len(),
            if view.deleted { "True" } else { "False" }
        )
    }
}

/// The unsealed frontier of a tree at one level (a row of
/// ``mem_tree_buffers``, or the empty buffer a missing row stands for).
#[pyclass(frozen, eq, name = "TreeBuffer", module = "memtree")]
#[derive(Debug, Clone, PartialEq)]
pub struct PyBuffer {
    inner: Buffer,
}

#[pymethods]
impl PyBuffer {
    /// The tree.
    #[getter]
    fn tree_id(&self) -> &str {
        &self.inner.tree_id
    }
    /// 0 holds chunk ids; level n holds level-n summary ids.
    #[getter]
    fn level(&self) -> i64 {
        self.inner.level
    }
    /// The pending items, in append order.
    #[getter]
    fn item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.inner.item_ids)
    }
    /// The sum of the items' token counts.
    #[getter]
    fn token_sum(&self) -> i64 {
        self.inner.token_sum
    }
    /// Time of the oldest item (UTC); None when empty.
    #[getter]
    fn oldest_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        convert::opt_from_ms(py, self.inner.oldest_at_ms)
    }
    /// Time of the last write (UTC); None when there is no row.
    #[getter]
    fn updated_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        convert::opt_from_ms(py, self.inner.updated_at_ms)
    }
    /// What :meth:`Trees.seal` compares: changes with every write.
    #[getter]
    fn version(&self) -> String {
        self.inner.version()
    }
    /// True when no item is pending.
    #[getter]
    fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    /// OpenHuman's seal gate: level 0 at 50,000 tokens or 10 items,
    /// higher levels at 10 items.
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

/// The summary trees of a store (``store.trees``); every call is one
/// transaction with the GIL released. Kinds are :class:`TreeKind` members or
/// their strings; an unknown kind or a level outside 0..32 is a
/// ``ValueError`` before any write.
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
    /// Creates an active tree (id ``"<kind>:<uuid>"`` unless given,
    /// created now unless given). A second tree of the same kind and scope
    /// (or id) raises :class:`memtree.ConstraintError`; nothing is written.
    #[pyo3(signature = (kind, scope, *, id=None, created_at=None))]
    fn create(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = kind_arg)] kind: TreeKind,
        #[pyo3(from_py_with = arg::scope)] scope: String,
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

    /// The tree with this id.
    fn get(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<PyTree>> {
        let tree = py.detach(|| self.core().trees().get(&id))?;
        Ok(tree.map(|inner| PyTree { inner }))
    }

    /// The tree of ``kind`` over ``scope``.
    fn get_by_scope(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = kind_arg)] kind: TreeKind,
        #[pyo3(from_py_with = arg::scope)] scope: String,
    ) -> PyResult<Option<PyTree>> {
        let tree = py.detach(|| self.core().trees().get_by_scope(kind, &scope))?;
        Ok(tree.map(|inner| PyTree { inner }))
    }

    /// The tree of ``kind`` over ``scope``, created when missing; racing
    /// callers get the same tree.
    fn get_or_create(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = kind_arg)] kind: TreeKind,
        #[pyo3(from_py_with = arg::scope)] scope: String,
    ) -> PyResult<PyTree> {
        let inner = py.detach(|| self.core().trees().get_or_create(kind, &scope))?;
        Ok(PyTree { inner })
    }

    /// Every tree of ``kind``, in creation order.
    fn list(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = kind_arg)] kind: TreeKind,
    ) -> PyResult<Vec<PyTree>> {
        Ok(trees_out(
            py.detach(|| self.core().trees().list_by_kind(kind))?,
        ))
    }

    /// Inserts a summary; False when its id exists (the stored row is
    /// kept as it is: summaries are immutable). The tree must exist
    /// (:class:`memtree.ConstraintError` otherwise).
    fn insert_summary(&self, py: Python<'_>, summary: &Bound<'_, PyAny>) -> PyResult<bool> {
        // Cast here rather than in the signature: PyO3 names the argument of
        // a failed conversion only in an exception note, which CPython < 3.11
        // never shows.
        let summary = summary.cast::<PySummary>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "summary: expected memtree.Summary, got {}",
                convert::args::type_name(summary)
            ))
        })?;
        let summary = summary.borrow().summary().clone();
        Ok(py.detach(|| self.core().trees().insert_summary(&summary))?)
    }

    /// One summary; a soft-deleted one comes back with ``deleted=True``.
    fn get_summary(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<PySummary>> {
        let found = py.detach(|| self.core().trees().get_summary(&id))?;
        Ok(found.map(PySummary::from))
    }

    /// The live summaries of a tree at ``level``, in seal order.
    fn list_summaries(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::tree_id)] tree_id: String,
        #[pyo3(from_py_with = arg::level)] level: i64,
    ) -> PyResult<Vec<PySummary>> {
        let rows = py.detach(|| self.core().trees().list_summaries(&tree_id, level))?;
        Ok(rows.into_iter().map(PySummary::from).collect())
    }

    /// How many live summaries a tree has.
    fn count_summaries(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::tree_id)] tree_id: String,
    ) -> PyResult<i64> {
        Ok(py.detach(|| self.core().trees().count_summaries(&tree_id))?)
    }

    /// Soft-deletes a summary (the row stays, flagged); True when it was live.
    fn delete_summary(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<bool> {
        Ok(py.detach(|| self.core().trees().delete_summary(&id))?)
    }

    /// Sets or (None) clears a summary's embedding, as
    /// :meth:`Store.set_chunk_embedding` does a chunk's; True when the
    /// summary exists.
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

    /// A summary's embedding as an ``array.array("f")``, as
    /// ``get_chunk_embedding`` returns one; None when it is missing or has
    /// none.
    fn get_summary_embedding<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let found = py.detach(|| self.core().trees().get_summary_embedding(&id))?;
        found
            .map(|v| super::convert::vector::float_array(py, &v))
            .transpose()
    }

    /// The buffer of a tree at ``level``; an empty one when there is none.
    fn get_buffer(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::tree_id)] tree_id: String,
        #[pyo3(from_py_with = arg::level)] level: i64,
    ) -> PyResult<PyBuffer> {
        let inner = py.detach(|| self.core().trees().get_buffer(&tree_id, level))?;
        Ok(PyBuffer { inner })
    }

    /// The non-empty level-0 buffers whose oldest item is at or before
    /// ``older_than``, oldest first (upper levels are never forced).
    fn list_stale_buffers(
        &self,
        py: Python<'_>,
        older_than: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<PyBuffer>> {
        let ms = convert::time_or_ms(older_than, "older_than")?;
        let rows = py.detach(|| self.core().trees().list_stale_buffers(ms))?;
        Ok(rows.into_iter().map(|inner| PyBuffer { inner }).collect())
    }

    /// Appends items (one token count each) to a buffer in one
    /// transaction; items already in it are skipped, so a retried append
    /// changes nothing. ``oldest`` is the time of the oldest item appended.
    /// Returns the buffer as it now stands.
    fn append_to_buffer(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::tree_id)] tree_id: String,
        #[pyo3(from_py_with = arg::level)] level: i64,
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

    /// Seals the buffer of ``tree_id`` at ``level`` into one summary at
    /// ``level + 1``, in ONE transaction: the summary row, its entities in
    /// the entity index, the children's parent links, the cleared buffer,
    /// the summary appended to the parent level's buffer, the follow-up
    /// jobs (``seal`` of the parent level when its gate is met, with dedupe
    /// key ``seal:<tree>:<level>``; ``topic_route`` for a source tree, key
    /// ``topic_route:summary:<id>``) and the tree's root and max level.
    ///
    /// ``version`` is :attr:`TreeBuffer.version` as read before summarising:
    /// when the buffer changed since, nothing is written and
    /// :class:`memtree.StaleBufferError` is raised. The children are the
    /// buffer's items; the time range and score default to the children's
    /// envelope and highest score, the id to OpenHuman's
    /// ``summary:<ms>:L<level>-<hex>``. ``ValueError``: a level outside
    /// 0..31, an empty buffer, a non-finite score, an unknown tree, an id
    /// that exists; nothing is written.
    #[pyo3(signature = (
        tree_id, level, version, *, content, token_count=0, id=None, entities=None,
        topics=None, time_range=None, score=None, sealed_at=None, embedding=None,
        content_path=None, content_sha256=None, enqueue_follow_ups=true
    ))]
    #[allow(clippy::too_many_arguments)]
    fn seal(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::tree_id)] tree_id: String,
        #[pyo3(from_py_with = arg::level)] level: i64,
        version: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::content)] content: String,
        #[pyo3(from_py_with = arg::token_count)] token_count: i64,
        id: Option<&Bound<'_, PyAny>>,
        entities: Option<&Bound<'_, PyAny>>,
        topics: Option<&Bound<'_, PyAny>>,
        time_range: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_score)] score: Option<f64>,
        sealed_at: Option<&Bound<'_, PyAny>>,
        embedding: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_content_path)] content_path: Option<String>,
        #[pyo3(from_py_with = arg::opt_content_sha256)] content_sha256: Option<String>,
        #[pyo3(from_py_with = arg::enqueue_follow_ups)] enqueue_follow_ups: bool,
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
        Ok(PySummary::from(inner))
    }

    /// The subtree under a summary in ONE statement (a recursive CTE):
    /// the summary, then each child and its subtree, depth first, children
    /// in seal order; ``depth`` levels deep (None: down to the chunks; 0:
    /// the summary alone). The children of a level-1 summary are chunks.
    /// Soft-deleted summaries come flagged; children with no row are left
    /// out; empty when ``summary_id`` is no summary. ``ValueError``: a
    /// negative ``depth``.
    #[pyo3(signature = (summary_id, depth=None))]
    fn walk<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::id)] summary_id: String,
        depth: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let depth = depth.map(|d| convert::int64(d, "depth")).transpose()?;
        let subtree = py.detach(|| self.core().trees().walk_subtree(&summary_id, depth))?;
        // Each row moves into its object as it is, in the statement's order
        // (nothing is converted until an attribute is read); the list is
        // then put in the walk's order. A node that comes twice gets an
        // equal object of its own at each place.
        let new_object = |object: Bound<'py, PyAny>| {
            untrack_leaf(&object);
            object
        };
        let summaries = (subtree.summaries.into_iter())
            .map(|packed| {
                Ok(new_object(
                    Bound::new(py, PySummary::packed(packed))?.into_any(),
                ))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let chunks = (subtree.chunks.into_iter())
            .map(|packed| {
                Ok(new_object(
                    Bound::new(py, PyChunk::packed(packed))?.into_any(),
                ))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let mut placed_summaries = vec![false; summaries.len()];
        let mut placed_chunks = vec![false; chunks.len()];
        let mut objects = Vec::with_capacity(subtree.order.len());
        for at in subtree.order {
            let (object, placed) = match at {
                At::Summary(i) => (&summaries[i], &mut placed_summaries[i]),
                At::Chunk(i) => (&chunks[i], &mut placed_chunks[i]),
            };
            objects.push(if *placed {
                new_object(copy_node(object)?)
            } else {
                *placed = true;
                object.clone()
            });
        }
        Ok(objects)
    }

    /// The summaries above a chunk or summary, nearest first (the root
    /// last), in ONE statement.
    fn ancestors(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Vec<PySummary>> {
        let rows = py.detach(|| self.core().trees().ancestors(&id))?;
        Ok(rows.into_iter().map(PySummary::from).collect())
    }

    fn __repr__(&self) -> String {
        format!("Trees({})", self.core().path().display())
    }
}

/// A new object equal to `node`, a `Summary` or `Chunk`.
fn copy_node<'py>(node: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = node.py();
    if let Ok(summary) = node.cast::<PySummary>() {
        return Ok(Bound::new(py, summary.get().clone())?.into_any());
    }
    let chunk = node.cast::<PyChunk>()?.get().clone();
    Ok(Bound::new(py, chunk)?.into_any())
}

/// Takes `object`, a `Summary` or `Chunk` just made, off the cycle
/// collector's lists. PyO3 makes every class a GC type, but these hold no
/// Python reference (only Rust data, and they cannot be subclassed), so
/// they can never be part of a cycle; CPython leaves such objects untracked
/// itself (tuples and dicts of atoms). A walk keeps thousands alive at once:
/// tracked, each allocation past the threshold ran a collection that
/// traversed them all again.
fn untrack_leaf(object: &Bound<'_, PyAny>) {
    let ptr = object.as_ptr();
    // SAFETY: `ptr` is a live object (we hold a reference, and the GIL);
    // a GC type is checked before its GC header is touched, and untracking
    // an object twice (PyO3's dealloc untracks too) is allowed.
    unsafe {
        if pyo3::ffi::PyType_HasFeature(pyo3::ffi::Py_TYPE(ptr), pyo3::ffi::Py_TPFLAGS_HAVE_GC) != 0
        {
            pyo3::ffi::PyObject_GC_UnTrack(ptr.cast());
        }
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
