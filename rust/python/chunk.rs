//! `memtree.Chunk`: an immutable, validated chunk backed by the core record.
//!
//! A `Chunk` that exists is valid: the constructor converts and checks every
//! field, so a batch fails before the database is touched.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::convert::{self, arg};
use super::imports;
use crate::chunks::packed::{ChunkView, PackedChunk};
use crate::chunks::record::{Chunk, DEFAULT_LIFECYCLE_STATUS};
use crate::chunks::Prevalidated;
use crate::db::packed::Lazy;
use crate::sys::clock::now_ms;

/// One ingested piece of text; immutable and valid once constructed.
///
/// ``timestamp``, ``time_range`` and ``created_at`` are aware datetimes or
/// integer milliseconds since the epoch (an ``int``, not a ``bool``), within
/// 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z in UTC; they are stored
/// as integer milliseconds since the epoch (UTC; sub-millisecond digits of a
/// datetime rounded down) and read back as UTC datetimes.
/// ``time_range`` defaults to ``(timestamp, timestamp)`` and
/// ``created_at`` to now. ``embedding`` is stored as a float32 vector and
/// must be finite and non-empty: any iterable of floats, or a 1-D float32 or
/// float64 buffer (a numpy row, ``array.array``, ``memoryview``) read as raw
/// memory in one piece. ``bytes``/``bytearray`` are a ``TypeError`` (their
/// items are bytes, not floats; wrap raw float32 bytes as
/// ``memoryview(b).cast("f")``). ``content_path`` and ``content_sha256``
/// point at the full body on disk when ``content`` holds a preview (
/// OpenHuman's staged upsert); they are set together or not at all, the
/// SHA-256 as 64 lowercase hex digits. Like the embedding and the lifecycle
/// status, they are written when the id is new and kept by a re-ingest.
///
/// Raises ``TypeError`` for a field of the wrong type and ``ValueError`` for
/// a bad value (an empty ``id``/``source_id``/``lifecycle_status``, an
/// unknown ``source_kind``, a naive or out-of-range time, a
/// ``time_range`` that ends before it starts, a negative ``token_count`` or
/// ``seq_in_source`` or one past 64 bits, a non-finite or empty
/// ``embedding``, a content pointer without its pair or a malformed
/// SHA-256), each naming the field.
#[pyclass(frozen, eq, name = "Chunk", module = "memtree")]
#[derive(Debug, Clone, PartialEq)]
pub struct PyChunk {
    /// The record, or (read in bulk: a tree walk, `get_chunks`,
    /// `list_chunks`, `iter_chunks`) its row's bytes,
    /// decoded the first time a field other than the id is read: thousands
    /// of walked chunks then cost one allocation each.
    body: Lazy<PackedChunk>,
}

impl From<Chunk> for PyChunk {
    fn from(chunk: Chunk) -> Self {
        PyChunk {
            body: Lazy::decoded(chunk),
        }
    }
}

#[pymethods]
impl PyChunk {
    #[new]
    #[pyo3(signature = (
        id, content, source_kind, source_id, owner, timestamp, *,
        source_ref=None, time_range=None, tags=None, token_count=0, seq_in_source=0,
        created_at=None, lifecycle_status=None, embedding=None, content_path=None,
        content_sha256=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        #[pyo3(from_py_with = arg::id)] id: String,
        #[pyo3(from_py_with = arg::content)] content: String,
        source_kind: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::source_id)] source_id: String,
        #[pyo3(from_py_with = arg::owner)] owner: String,
        timestamp: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::opt_source_ref)] source_ref: Option<String>,
        time_range: Option<&Bound<'_, PyAny>>,
        tags: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::token_count)] token_count: i64,
        #[pyo3(from_py_with = arg::seq_in_source)] seq_in_source: i64,
        created_at: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_lifecycle_status)] lifecycle_status: Option<String>,
        embedding: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_content_path)] content_path: Option<String>,
        #[pyo3(from_py_with = arg::opt_content_sha256)] content_sha256: Option<String>,
    ) -> PyResult<Self> {
        let timestamp_ms = convert::time_or_ms(timestamp, "timestamp")?;
        let (start, end) = match time_range {
            None => (timestamp_ms, timestamp_ms),
            Some(range) => {
                let pair = range
                    .cast::<PyTuple>()
                    .ok()
                    .filter(|t| t.len() == 2)
                    .ok_or_else(|| {
                        PyTypeError::new_err(
                            "time_range: expected a (start, end) tuple of datetimes or int milliseconds",
                        )
                    })?;
                (
                    convert::time_or_ms(&pair.get_item(0)?, "time_range[0]")?,
                    convert::time_or_ms(&pair.get_item(1)?, "time_range[1]")?,
                )
            }
        };
        let inner = Chunk {
            id,
            content,
            source_kind: convert::source_kind(source_kind, "source_kind")?,
            source_id,
            source_ref,
            owner,
            timestamp_ms,
            time_range_start_ms: start,
            time_range_end_ms: end,
            tags: tags.map_or(Ok(Vec::new()), |t| convert::strs(t, "tags"))?,
            token_count,
            seq_in_source,
            created_at_ms: convert::opt_time_or_ms(created_at, "created_at")?
                .unwrap_or_else(now_ms),
            lifecycle_status: lifecycle_status.unwrap_or_else(|| DEFAULT_LIFECYCLE_STATUS.into()),
            embedding: convert::embedding(embedding)?,
            content_path,
            content_sha256,
        };
        inner.validate("")?;
        Ok(PyChunk::from(inner))
    }

    /// Primary key; upserts are idempotent on it.
    #[getter]
    fn id(&self) -> &str {
        self.body.id()
    }
    /// The text.
    #[getter]
    fn content(&self) -> &str {
        self.view().content
    }
    /// Kind of the source the text came from.
    #[getter]
    fn source_kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::source_kind_to_py(py, self.view().source_kind)
    }
    /// Identifier of the source within its kind.
    #[getter]
    fn source_id(&self) -> &str {
        self.view().source_id
    }
    /// Optional pointer into the source.
    #[getter]
    fn source_ref(&self) -> Option<&str> {
        self.view().source_ref
    }
    /// Who the chunk belongs to.
    #[getter]
    fn owner(&self) -> &str {
        self.view().owner
    }
    /// When the content happened (UTC).
    #[getter]
    fn timestamp<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_ms(py, self.view().timestamp_ms)
    }
    /// The period the chunk covers (UTC).
    #[getter]
    fn time_range<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let view = self.view();
        PyTuple::new(
            py,
            [
                convert::from_ms(py, view.time_range_start_ms)?,
                convert::from_ms(py, view.time_range_end_ms)?,
            ],
        )
    }
    /// Free-form labels.
    #[getter]
    fn tags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.view().tags.iter())
    }
    /// Token count of ``content``.
    #[getter]
    fn token_count(&self) -> i64 {
        self.view().token_count
    }
    /// Position within its source.
    #[getter]
    fn seq_in_source(&self) -> i64 {
        self.view().seq_in_source
    }
    /// When the chunk was created (UTC).
    #[getter]
    fn created_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_ms(py, self.view().created_at_ms)
    }
    /// Pipeline state: ``admitted`` by default.
    #[getter]
    fn lifecycle_status(&self) -> &str {
        self.view().lifecycle_status
    }
    /// The float32 embedding, or None.
    #[getter]
    fn embedding<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        convert::embedding_tuple(py, self.view().embedding)
    }
    /// Where the full body lives on disk, or None.
    #[getter]
    fn content_path(&self) -> Option<&str> {
        self.view().content_path
    }
    /// The SHA-256 of the body at ``content_path`` (hex), or None.
    #[getter]
    fn content_sha256(&self) -> Option<&str> {
        self.view().content_sha256
    }
    /// ``timestamp`` as stored: milliseconds since the epoch.
    #[getter]
    fn timestamp_ms(&self) -> i64 {
        self.view().timestamp_ms
    }

    /// A copy with the given fields changed, validated like a new chunk.
    #[pyo3(signature = (**changes))]
    fn replace<'py>(
        slf: &Bound<'py, Self>,
        changes: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let fields = slf.get().constructor_kwargs(slf.py())?;
        if let Some(changes) = changes {
            fields.update(changes.as_mapping())?;
        }
        slf.get_type().call((), Some(&fields))
    }

    /// Equal chunks have equal ids, so the id alone is a consistent hash.
    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.id().hash(&mut h);
        h.finish()
    }

    /// Pickles as `functools.partial(Chunk, **fields)()`.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let partial = imports::get(py)?
            .partial
            .bind(py)
            .call((slf.get_type(),), Some(&slf.get().constructor_kwargs(py)?))?;
        Ok((partial, PyTuple::empty(py)))
    }

    fn __repr__(&self) -> String {
        let c = &self.chunk();
        format!(
            "Chunk(id={:?}, source_kind={:?}, source_id={:?}, owner={:?}, timestamp_ms={}, \
             lifecycle_status={:?}, content={:?})",
            c.id,
            c.source_kind.as_str(),
            c.source_id,
            c.owner,
            c.timestamp_ms,
            c.lifecycle_status,
            preview(&c.content)
        )
    }
}

impl PyChunk {
    /// A chunk a bulk read kept as its row's bytes.
    pub fn packed(packed: PackedChunk) -> Self {
        PyChunk {
            body: Lazy::packed(packed),
        }
    }

    /// The record (decoded now if it is still the row's bytes).
    pub fn chunk(&self) -> &Chunk {
        self.body.record()
    }

    /// The fields, borrowed: from the record if it is decoded, else
    /// straight from the row's bytes, so that reading one field (a walk's
    /// or a bulk read's `content`) decodes nothing else.
    fn view(&self) -> ChunkView<'_> {
        self.body.view()
    }

    /// New references to `chunks` (any iterable of `Chunk`), taken with the GIL
    /// held. `Chunk` is frozen, so the core reads the records through them with
    /// the GIL released ([`PyChunk::refs`]) and nothing is copied.
    pub fn extract_all(chunks: &Bound<'_, PyAny>) -> PyResult<Vec<Py<PyChunk>>> {
        let iter = chunks
            .try_iter()
            .map_err(|_| PyTypeError::new_err("chunks: expected an iterable of Chunk"))?;
        let mut out = Vec::with_capacity(chunks.len().unwrap_or(0));
        for (i, item) in iter.enumerate() {
            let item = item?;
            let chunk = item.cast::<PyChunk>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "chunks[{i}]: expected memtree.Chunk, got {}",
                    item.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            out.push(chunk.clone().unbind());
        }
        Ok(out)
    }

    /// The core records behind extracted chunks; needs no GIL (frozen class).
    /// Every `Chunk` passed validation when it was built (or was read back
    /// from a database) and cannot change, so the store need not check it
    /// again: validation runs once per call.
    pub fn refs(chunks: &[Py<PyChunk>]) -> Vec<Prevalidated<'_>> {
        chunks
            .iter()
            .map(|c| Prevalidated::vouch(c.get().chunk()))
            .collect()
    }

    /// Core records as new `Chunk` objects.
    pub fn wrap_all(py: Python<'_>, chunks: Vec<Chunk>) -> PyResult<Vec<Py<PyChunk>>> {
        chunks
            .into_iter()
            .map(|inner| Py::new(py, PyChunk::from(inner)))
            .collect()
    }

    /// Chunks a bulk read kept as their rows' bytes as new `Chunk` objects,
    /// each decoded when a field other than its id is first read.
    pub fn wrap_packed(py: Python<'_>, chunks: Vec<PackedChunk>) -> PyResult<Vec<Py<PyChunk>>> {
        chunks
            .into_iter()
            .map(|packed| Py::new(py, PyChunk::packed(packed)))
            .collect()
    }

    /// The keyword arguments that rebuild this chunk through the constructor.
    fn constructor_kwargs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.chunk();
        let d = PyDict::new(py);
        d.set_item("id", &c.id)?;
        d.set_item("content", &c.content)?;
        d.set_item(
            "source_kind",
            convert::source_kind_to_py(py, c.source_kind)?,
        )?;
        d.set_item("source_id", &c.source_id)?;
        d.set_item("owner", &c.owner)?;
        d.set_item("timestamp", convert::from_ms(py, c.timestamp_ms)?)?;
        d.set_item("source_ref", c.source_ref.as_deref())?;
        d.set_item("time_range", self.time_range(py)?)?;
        d.set_item("tags", self.tags(py)?)?;
        d.set_item("token_count", c.token_count)?;
        d.set_item("seq_in_source", c.seq_in_source)?;
        d.set_item("created_at", convert::from_ms(py, c.created_at_ms)?)?;
        d.set_item("lifecycle_status", &c.lifecycle_status)?;
        d.set_item("embedding", self.embedding(py)?)?;
        d.set_item("content_path", c.content_path.as_deref())?;
        d.set_item("content_sha256", c.content_sha256.as_deref())?;
        Ok(d)
    }
}

fn preview(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
