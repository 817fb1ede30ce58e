//! `memtree.Store`: argument conversion and GIL release around the core store.

use std::collections::HashMap;
use std::ffi::CString;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyType;
use pyo3::PyTypeInfo;

use super::chunk::PyChunk;
use super::convert::vector;
use super::convert::{self, arg};
use super::errors::JournalModeWarning;
use super::{paging, search};
use crate::chunks::paging::{ChunkPages, ListCursor};
use crate::db::store::Store;

/// A handle on one memtree database.
///
/// Handles on the same file share one connection per process. Use as a
/// context manager or call :meth:`close`; the connection closes with the
/// last handle. Opening issues :class:`memtree.JournalModeWarning` when
/// SQLite keeps a journal mode other than TRUNCATE.
///
/// An open joins the shared connection only while the path still names the
/// file it opened; if the file was renamed away or its folder deleted, the
/// open gets the file now at the path, and the older handles keep the moved
/// file (their writes raise :class:`memtree.PermanentError`
/// SQLITE_READONLY_DBMOVED, 1032). After ``fork()`` a handle opened by the
/// parent raises :class:`memtree.ForkedStoreError`; open the store again in
/// the child.
#[pyclass(frozen, name = "Store", module = "memtree")]
pub struct PyStore {
    pub(super) inner: Store,
}

/// Issues `memtree.JournalModeWarning` when SQLite kept another journal mode.
fn warn_journal(py: Python<'_>, warning: Option<String>) -> PyResult<()> {
    if let Some(message) = warning {
        let category = JournalModeWarning::type_object(py);
        let message = CString::new(message.replace('\0', " "))?;
        PyErr::warn(py, &category, &message, 2)?;
    }
    Ok(())
}

impl PyStore {
    fn open_with(
        py: Python<'_>,
        open: impl FnOnce() -> crate::Result<(Store, Option<String>)> + Send,
    ) -> PyResult<Self> {
        let (inner, warning) = py.detach(open)?;
        warn_journal(py, warning)?;
        Ok(PyStore { inner })
    }
}

#[pymethods]
impl PyStore {
    #[new]
    fn new(py: Python<'_>, #[pyo3(from_py_with = arg::path)] path: PathBuf) -> PyResult<Self> {
        PyStore::open_with(py, || crate::ops::open::open_file(&path))
    }

    /// Opens ``<workspace>/memory_tree/chunks.db``, creating the folders
    /// (``TypeError``/``ValueError`` for a bad ``workspace`` as for ``path``).
    #[classmethod]
    fn open(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::workspace)] workspace: PathBuf,
    ) -> PyResult<Self> {
        PyStore::open_with(py, || crate::ops::open::open_workspace(&workspace))
    }

    /// Clears the circuit breaker of ``path`` so the next open tries at once.
    #[staticmethod]
    fn invalidate(#[pyo3(from_py_with = arg::path)] path: PathBuf) -> PyResult<()> {
        Ok(crate::db::connection::invalidate(&path)?)
    }

    /// The canonical path of the database file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_owned()
    }

    /// The journal mode SQLite reports (``"truncate"`` normally).
    #[getter]
    fn journal_mode(&self) -> PyResult<String> {
        Ok(self.inner.journal_mode()?)
    }

    /// The job queue stored in this database.
    #[getter]
    fn jobs(slf: &Bound<'_, Self>) -> super::jobs::PyJobs {
        super::jobs::PyJobs::new(slf)
    }

    /// The scores, entity index and hotness in this database (``memtree.Scores``).
    #[getter]
    fn scores(slf: &Bound<'_, Self>) -> super::scores::PyScores {
        super::scores::PyScores::new(slf)
    }

    /// The periodic side of the job queue (``memtree.Scheduler``).
    #[getter]
    fn scheduler(slf: &Bound<'_, Self>) -> super::scheduler::PyScheduler {
        super::scheduler::PyScheduler::new(slf)
    }

    /// The summary trees in this database (``memtree.Trees``).
    #[getter]
    fn trees(slf: &Bound<'_, Self>) -> super::trees::PyTrees {
        super::trees::PyTrees::new(slf)
    }

    /// True after :meth:`close`.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Releases this handle; later calls raise StoreClosedError.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.inner.close());
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    // Returns None (never swallows the exception), so type checkers know a
    // `return` inside the `with` block cannot fall through.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) {
        self.close(py);
    }

    fn __repr__(&self) -> String {
        let state = if self.inner.is_closed() {
            "closed"
        } else {
            "open"
        };
        format!(
            "Store({:?}, {state})",
            self.inner.path().display().to_string()
        )
    }

    /// Inserts chunks by id in one transaction; all or none. An id already
    /// stored is re-ingested: its ingest fields are replaced, its embedding,
    /// lifecycle status, raw refs, content pointers and parent summary id are
    /// kept (so are they by :meth:`replace_source_chunks` and a job batch).
    fn upsert_chunks(&self, py: Python<'_>, chunks: &Bound<'_, PyAny>) -> PyResult<usize> {
        let chunks = PyChunk::extract_all(chunks)?;
        Ok(py.detach(|| self.inner.upsert_chunks(&PyChunk::refs(&chunks)))?)
    }

    /// The chunk with this id, or None.
    fn get_chunk(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<PyChunk>> {
        let found = py.detach(|| self.inner.get_chunk(&id))?;
        Ok(found.map(PyChunk::from))
    }

    /// The chunks with these ids in the order asked; missing ids skipped,
    /// an id asked twice returned twice. One SQL statement (one read lock)
    /// for any number of ids.
    fn get_chunks(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<Vec<Py<PyChunk>>> {
        let ids = convert::strs(ids, "ids")?;
        let found = py.detach(|| self.inner.get_chunks_packed(&ids))?;
        PyChunk::wrap_packed(py, found)
    }

    #[pyo3(signature = (
        *, source_kind=None, source_id=None, owner=None, since=None, until=None, limit=100,
        after=None
    ))]
    /// Newest-first chunks matching every filter given (``since`` inclusive,
    /// ``until`` exclusive), in a total order: ``timestamp`` descending, then
    /// ``seq_in_source`` ascending (a document's chunks in reading order),
    /// then ``id`` ascending. ``limit`` is any ``int``, clamped to 1..10000
    /// however large or negative; a ``bool``, ``float`` or ``str`` raises
    /// ``TypeError`` naming ``limit``.
    ///
    /// ``after``: a chunk (usually the last of the previous page); only the
    /// rows that follow it in that order are listed, so pages never skip or
    /// repeat a row, whatever rows share its timestamp. It need not still be
    /// stored. :meth:`iter_chunks` pages this way for you.
    #[allow(clippy::too_many_arguments)]
    fn list_chunks(
        &self,
        py: Python<'_>,
        source_kind: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_source_id)] source_id: Option<String>,
        #[pyo3(from_py_with = arg::opt_owner)] owner: Option<String>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::clamped_limit)] limit: i64,
        #[pyo3(from_py_with = paging::after_arg)] after: Option<ListCursor>,
    ) -> PyResult<Vec<Py<PyChunk>>> {
        let filter = convert::chunk_filter(source_kind, source_id, owner, since, until)?;
        let found = py.detach(|| {
            self.inner
                .list_chunks_after_packed(&filter, after.as_ref(), limit)
        })?;
        PyChunk::wrap_packed(py, found)
    }

    /// SQLite's query plan for :meth:`list_chunks` with these filters, one
    /// line per step: every combination of filters is one ``SEARCH`` on an
    /// index (no filter at all: a ``SCAN`` of the time index that ``limit``
    /// stops), never a ``TEMP B-TREE``.
    #[pyo3(signature = (
        *, source_kind=None, source_id=None, owner=None, since=None, until=None, after=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn explain_list_chunks(
        &self,
        py: Python<'_>,
        source_kind: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_source_id)] source_id: Option<String>,
        #[pyo3(from_py_with = arg::opt_owner)] owner: Option<String>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = paging::after_arg)] after: Option<ListCursor>,
    ) -> PyResult<Vec<String>> {
        let filter = convert::chunk_filter(source_kind, source_id, owner, since, until)?;
        Ok(py.detach(|| {
            self.inner
                .explain_list_chunks_after(&filter, after.as_ref())
        })?)
    }

    #[pyo3(signature = (
        *, source_kind=None, source_id=None, owner=None, since=None, until=None, page_size=1000
    ))]
    /// Every chunk matching the filters, once each, in :meth:`list_chunks`
    /// order, read ``page_size`` rows at a time (each page one read, the GIL
    /// released; ``page_size`` follows the ``limit`` rule).
    ///
    /// Pages follow one another by cursor, not by offset: each costs the
    /// same however far the walk has gone. Rows committed while iterating
    /// are seen when the walk reaches their place in the order (an older
    /// row inserted meanwhile comes up; a newer one, already behind the
    /// cursor, does not); no row is yielded twice.
    #[allow(clippy::too_many_arguments)]
    fn iter_chunks(
        slf: Py<Self>,
        source_kind: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_source_id)] source_id: Option<String>,
        #[pyo3(from_py_with = arg::opt_owner)] owner: Option<String>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::page_size)] page_size: i64,
    ) -> PyResult<paging::PyChunkIterator> {
        let filter = convert::chunk_filter(source_kind, source_id, owner, since, until)?;
        Ok(paging::PyChunkIterator::new(
            slf,
            ChunkPages::new(filter, page_size),
        ))
    }

    /// Number of chunks stored.
    fn count_chunks(&self, py: Python<'_>) -> PyResult<i64> {
        Ok(py.detach(|| self.inner.count_chunks())?)
    }

    /// A chunk's lifecycle status, or None if it does not exist.
    fn get_lifecycle_status(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<String>> {
        Ok(py.detach(|| self.inner.lifecycle_status(&id))?)
    }

    /// Sets the status of existing chunks in one transaction; returns how many.
    fn set_lifecycle_status(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::status)] status: String,
    ) -> PyResult<usize> {
        let ids = convert::strs(ids, "ids")?;
        Ok(py.detach(|| self.inner.set_lifecycle_status(&ids, &status))?)
    }

    /// Chunk counts per lifecycle status.
    fn count_by_lifecycle_status(&self, py: Python<'_>) -> PyResult<HashMap<String, i64>> {
        Ok(py.detach(|| self.inner.count_by_lifecycle_status())?)
    }

    /// True when the source has been claimed.
    fn is_source_ingested(
        &self,
        py: Python<'_>,
        source_kind: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::source_id)] source_id: String,
    ) -> PyResult<bool> {
        let kind = convert::source_kind(source_kind, "source_kind")?;
        Ok(py.detach(|| self.inner.is_source_ingested(kind, &source_id))?)
    }

    /// The ingest gate: True for the one caller that claims the source.
    fn claim_source(
        &self,
        py: Python<'_>,
        source_kind: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::source_id)] source_id: String,
    ) -> PyResult<bool> {
        let kind = convert::source_kind(source_kind, "source_kind")?;
        Ok(py.detach(|| self.inner.claim_source(kind, &source_id))?)
    }

    /// Deletes a source's chunks, their score and entity-index rows and its
    /// ingest claim, in one transaction; returns the chunks deleted.
    fn delete_source(
        &self,
        py: Python<'_>,
        source_kind: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::source_id)] source_id: String,
    ) -> PyResult<usize> {
        let kind = convert::source_kind(source_kind, "source_kind")?;
        Ok(py.detach(|| self.inner.delete_source(kind, &source_id))?)
    }

    /// Retention: deletes the chunks whose timestamp is more than
    /// ``older_than`` ago (a ``timedelta``) or before it (an aware
    /// ``datetime``), narrowed by the :meth:`list_chunks` filters, with
    /// their score and entity-index rows (the cascade of
    /// :meth:`delete_source`), in transactions of at most 500 chunks;
    /// returns how many. Ingest-gate rows stay (a source is not ingested
    /// again because its old chunks were dropped); content files named by
    /// content pointers are not removed.
    #[pyo3(signature = (older_than, *, source_kind=None, source_id=None, owner=None, since=None))]
    #[allow(clippy::too_many_arguments)]
    fn delete_chunks(
        &self,
        py: Python<'_>,
        older_than: &Bound<'_, PyAny>,
        source_kind: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_source_id)] source_id: Option<String>,
        #[pyo3(from_py_with = arg::opt_owner)] owner: Option<String>,
        since: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        super::ops::delete_chunks(
            py,
            &self.inner,
            older_than,
            source_kind,
            source_id,
            owner,
            since,
        )
    }

    /// Deletes an owner's chunks with their score and entity-index rows.
    fn delete_owner(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::owner)] owner: String,
    ) -> PyResult<usize> {
        Ok(py.detach(|| self.inner.delete_owner(&owner))?)
    }

    /// Erases an owner: deletes its chunks with their score and
    /// entity-index rows in one transaction that also logs the content
    /// files their pointers name, then removes those files — each only if
    /// it lies under the content root (``content_root``, by default
    /// ``content/`` beside the database, as OpenHuman keeps
    /// ``memory_tree/content`` beside ``memory_tree/chunks.db``), is reached
    /// without a symbolic link, is a regular file, still has the recorded
    /// SHA-256 (of its body after the front matter, or of the whole file)
    /// and is named by no remaining chunk or summary. Any other file is
    /// kept and listed with why; folders stay. A crash after the commit
    /// leaves the log, which the next open (or :meth:`sweep_erased_files`)
    /// finishes. ``ValueError`` for an empty ``owner``, changing nothing.
    #[pyo3(signature = (owner, *, content_root=None))]
    fn erase_owner(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::owner)] owner: String,
        content_root: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<super::ops::PyErasureReport> {
        super::ops::erase_owner(py, &self.inner, owner, content_root)
    }

    /// Removes the files an erasure logged under ``content_root`` (by
    /// default ``content/`` beside the database) and has not removed yet,
    /// with the checks of :meth:`erase_owner`. The open that makes this
    /// process's connection to the file does this for the default root; call
    /// it for a root of your own.
    #[pyo3(signature = (*, content_root=None))]
    fn sweep_erased_files(
        &self,
        py: Python<'_>,
        content_root: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<super::ops::PyFileSweep> {
        super::ops::sweep_erased_files(py, &self.inner, content_root)
    }

    /// Makes ``chunks`` the whole content of the source in one transaction;
    /// returns ``(upserted, removed)``.
    fn replace_source_chunks(
        &self,
        py: Python<'_>,
        source_kind: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::source_id)] source_id: String,
        chunks: &Bound<'_, PyAny>,
    ) -> PyResult<(usize, usize)> {
        let kind = convert::source_kind(source_kind, "source_kind")?;
        let chunks = PyChunk::extract_all(chunks)?;
        let outcome = py.detach(|| {
            self.inner
                .replace_source_chunks(kind, &source_id, &PyChunk::refs(&chunks))
        })?;
        Ok((outcome.upserted, outcome.removed))
    }

    /// The pragmas in force on the shared connection, as SQLite reports them.
    fn connection_settings(&self, py: Python<'_>) -> PyResult<HashMap<String, String>> {
        Ok(py
            .detach(|| self.inner.connection_settings())?
            .into_iter()
            .collect())
    }

    /// Gives free pages back to the file system with ``VACUUM``, in
    /// place (the same file, one transaction through its journal: a kill
    /// at any moment leaves the old contents or the compacted ones, whole).
    /// Checks first that the store's folder (and the temporary folder, if
    /// on another file system) has room for twice the database, raising
    /// ``DiskFullError`` with nothing changed otherwise. Other connections
    /// wait (busy timeout) while it runs.
    fn compact(&self, py: Python<'_>) -> PyResult<super::ops::PyCompactReport> {
        super::ops::compact_store(py, &self.inner)
    }

    /// Writes an online, consistent copy of this store to ``dest`` while
    /// other threads and processes keep using it: one snapshot (writers wait
    /// for its read lock, as for any reader), written under
    /// ``<dest>.partial``, synced, verified (``integrity_check``, schema
    /// version, every table's row count) and linked into place, the folder
    /// synced. ``PathRefusedError``, changing nothing, when anything exists
    /// at ``dest`` or its side-file names (a backup never replaces a file)
    /// or its folder is missing.
    fn backup(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::dest)] dest: PathBuf,
    ) -> PyResult<super::ops::PyCopyReport> {
        super::ops::backup_store(py, &self.inner, dest)
    }

    /// ``quick_check`` (or ``integrity_check`` with ``full``); ``["ok"]`` if healthy.
    #[pyo3(signature = (*, full=false))]
    fn check(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::full)] full: bool,
    ) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.inner.check(full))?)
    }

    /// Sets a chunk's embedding without rewriting the chunk, in one
    /// transaction; returns whether the chunk exists (a missing id writes
    /// nothing). ``None`` clears it (re-ingest keeps an embedding, so this is
    /// how a caller drops one). ``vector`` is any iterable of floats or an
    /// object with the buffer protocol holding 1-D float32 or float64 values
    /// (``array.array('f')``, ``memoryview``, a numpy ``float32`` array: read
    /// as raw bytes, not element by element). Stored as OpenHuman's BLOB:
    /// little-endian ``f32``, 4 bytes per value, no header. An empty vector,
    /// NaN or infinity (also a float64 beyond float32's range) is a
    /// ``ValueError``, a non-float element or buffer format a ``TypeError``.
    fn set_chunk_embedding(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
        vector: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let vector = convert::vector(vector, "vector")?;
        Ok(py.detach(|| self.inner.set_chunk_embedding(&id, vector.as_deref()))?)
    }

    /// A chunk's embedding as an ``array.array("f")`` (a buffer:
    /// ``numpy.asarray`` takes it without a copy), or None if it has none or
    /// does not exist.
    fn get_chunk_embedding<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let found = py.detach(|| self.inner.get_chunk_embedding(&id))?;
        found.map(|v| vector::float_array(py, &v)).transpose()
    }

    /// Sets many chunks' embeddings in ONE transaction (all or none):
    /// row ``i`` of ``matrix`` goes to ``ids[i]``. ``matrix`` is a 2-D float32
    /// or float64 buffer (a numpy ``(n, d)`` array, read as raw memory) or a
    /// sequence of vectors, each ``None`` (clears), an iterable of floats or a
    /// 1-D float buffer. Returns how many of the ids name a chunk (a missing
    /// id writes nothing). Every id and row is checked before the transaction:
    /// a row count other than the ids', an empty row, NaN or infinity is a
    /// ``ValueError`` naming it (``matrix[3]``).
    fn set_chunk_embeddings(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        matrix: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let ids = convert::strs(ids, "ids")?;
        let matrix = vector::Matrix::extract(matrix, "matrix")?;
        Ok(py.detach(|| self.inner.set_chunk_embeddings(&ids, &matrix.rows()))?)
    }

    /// The embeddings of these chunks in one read: the ids that have one,
    /// in the order asked (missing ids and chunks without an embedding are
    /// skipped). Embeddings of different dimensions are a ``ValueError``.
    fn get_chunk_embeddings(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
    ) -> PyResult<vector::PyEmbeddings> {
        let ids = convert::strs(ids, "ids")?;
        let rows = py.detach(|| self.inner.get_chunk_embeddings(&ids))?;
        Ok(vector::PyEmbeddings::new(py, rows))
    }

    /// The ``k`` stored embeddings nearest ``vector``, best first.
    ///
    /// Exact: every chunk that matches all the filters (those of
    /// :meth:`list_chunks`, applied first through its indexes) and has an
    /// embedding of the query's dimension is scored; ties are broken by id.
    /// ``k`` rows come back whenever at least ``k`` match. Rows without an
    /// embedding or of another dimension are skipped (a dimension no row has
    /// gives ``[]``). ``metric``: ``"cosine"`` (a stored zero vector scores
    /// 0), ``"dot"`` or ``"l2"`` (the score is the negated distance); a
    /// higher score is better. With ``include_summaries`` live summaries with
    /// an embedding compete too (``kind="summary"``): ``since``/``until``
    /// compare their ``time_range_end``, and a ``source_kind``,
    /// ``source_id`` or ``owner`` filter excludes them.
    ///
    /// Always the committed state: a write committed by any thread or
    /// process is seen by the next search. The embeddings are kept in memory
    /// after the first search (about ``4 * rows * dim`` bytes), keyed on
    /// SQLite's change counter, and read again after any commit. The GIL is
    /// released for the whole search; searches in several threads run in
    /// parallel.
    ///
    /// ``vector``: a 1-D float buffer or an iterable of floats; an empty one,
    /// NaN or infinity (or a zero vector with cosine) is a ``ValueError``.
    /// ``k`` follows the ``limit`` rule (any int, clamped to 1..10000; a
    /// bool, float or str is a ``TypeError``); an unknown metric is a
    /// ``ValueError``.
    #[pyo3(signature = (
        vector, k=10, *, source_kind=None, source_id=None, owner=None, since=None, until=None,
        metric=String::from("cosine"), include_summaries=false
    ))]
    // The default of `metric` is converted by `arg::metric`, so PyO3 cannot
    // print it: the signature is spelled out.
    #[pyo3(
        text_signature = "($self, vector, k=10, *, source_kind=None, source_id=None, owner=None, \
                          since=None, until=None, metric='cosine', include_summaries=False)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn search_vector(
        &self,
        py: Python<'_>,
        vector: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::k)] k: i64,
        source_kind: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_source_id)] source_id: Option<String>,
        #[pyo3(from_py_with = arg::opt_owner)] owner: Option<String>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::metric)] metric: String,
        #[pyo3(from_py_with = arg::include_summaries)] include_summaries: bool,
    ) -> PyResult<Vec<search::PyHit>> {
        let filter = convert::chunk_filter(source_kind, source_id, owner, since, until)?;
        search::search_vector(
            py,
            &self.inner,
            vector,
            k,
            &filter,
            &metric,
            include_summaries,
        )
    }

    #[pyo3(signature = (
        query, k=10, *, source_kind=None, source_id=None, owner=None, since=None, until=None,
        include_summaries=false, syntax=String::from("words")
    ))]
    #[pyo3(
        text_signature = "($self, query, k=10, *, source_kind=None, source_id=None, owner=None, \
                          since=None, until=None, include_summaries=False, syntax='words')"
    )]
    /// The ``k`` chunks whose content best matches ``query``, best first.
    ///
    /// Ranked by SQLite's ``bm25()`` over the full-text index of chunk
    /// content (tokenizer ``unicode61 remove_diacritics 2``: case and
    /// accents fold); the hit's ``score`` is the negated bm25 (higher is
    /// better), ties are broken by id, ``text_rank`` is the 1-based rank and
    /// ``snippet`` a short excerpt around the best match. The filters are
    /// those of :meth:`list_chunks`, exact and applied before the cut to
    /// ``k``: ``k`` rows come back whenever at least ``k`` match. With
    /// ``include_summaries`` live summaries compete too (``kind="summary"``,
    /// ranked in their own index): ``since``/``until`` compare their
    /// ``time_range_end``, and a ``source_kind``, ``source_id`` or ``owner``
    /// filter excludes them.
    ///
    /// ``syntax="words"`` (the default): any text is plain words, all of
    /// them required; quotes, ``AND``/``OR``/``NEAR``, ``*``, ``^``,
    /// parentheses and colons are only words, never a syntax error. Text
    /// without a single word (empty, only punctuation) is a ``ValueError``
    /// naming ``query``. ``syntax="fts5"``: the FTS5 query language as
    /// SQLite documents it (phrases, ``AND``/``OR``/``NOT``, ``NEAR``,
    /// prefixes); a query it cannot parse is a ``ValueError`` naming
    /// ``query`` with SQLite's message.
    ///
    /// The index is kept by triggers in the transaction of every write, so a
    /// search sees exactly the committed rows. ``k`` follows the ``limit``
    /// rule (any int, clamped to 1..10000; a bool, float or str is a
    /// ``TypeError``). The GIL is released for the whole search.
    #[allow(clippy::too_many_arguments)]
    fn search_text(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::query)] query: String,
        #[pyo3(from_py_with = arg::k)] k: i64,
        source_kind: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_source_id)] source_id: Option<String>,
        #[pyo3(from_py_with = arg::opt_owner)] owner: Option<String>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::include_summaries)] include_summaries: bool,
        #[pyo3(from_py_with = arg::syntax)] syntax: String,
    ) -> PyResult<Vec<search::PyHit>> {
        let filter = convert::chunk_filter(source_kind, source_id, owner, since, until)?;
        search::search_text(
            py,
            &self.inner,
            &query,
            k,
            &filter,
            &syntax,
            include_summaries,
        )
    }

    #[pyo3(signature = (
        *, text=None, vector=None, k=10, source_kind=None, source_id=None, owner=None,
        since=None, until=None, include_summaries=false
    ))]
    /// Hybrid search: ``text`` (plain words, as :meth:`search_text`) and
    /// ``vector`` (cosine, as :meth:`search_vector`) fused by reciprocal
    /// rank fusion, best first.
    ///
    /// With both, each search ranks the rows matching the filters to a depth
    /// of ``max(k, 100)``, and a hit scores ``1 / (60 + rank)`` summed over
    /// the lists that hold it: ``score`` is that sum, ``text_rank`` and
    /// ``vector_rank`` its rank in each list (None when the list does not
    /// hold it), ``snippet`` the excerpt when its content matches the text.
    /// Ties are broken by id. With only one of them, that search alone
    /// (its own scores). Neither is a ``ValueError`` naming ``text``; the
    /// arguments are checked as the single searches check them, before
    /// either runs.
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        py: Python<'_>,
        text: Option<&Bound<'_, PyAny>>,
        vector: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::k)] k: i64,
        source_kind: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_source_id)] source_id: Option<String>,
        #[pyo3(from_py_with = arg::opt_owner)] owner: Option<String>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::include_summaries)] include_summaries: bool,
    ) -> PyResult<Vec<search::PyHit>> {
        let filter = convert::chunk_filter(source_kind, source_id, owner, since, until)?;
        search::search(py, &self.inner, text, vector, k, &filter, include_summaries)
    }

    /// Sets a chunk's raw-archive references (``raw_refs_json``,
    /// OpenHuman's JSON: ``[{"path": ..., "start": ..., "end": ...}]``) in one
    /// transaction; ``None`` clears them, ``[]`` stores an empty list. Returns
    /// whether the chunk exists. An empty path, ``start < 0`` or
    /// ``end < start`` is a ``ValueError`` naming the ref (``refs[1].end``).
    fn set_chunk_raw_refs(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
        refs: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let refs = convert::raw_refs(refs, "refs")?;
        Ok(py.detach(|| self.inner.set_chunk_raw_refs(&id, refs.as_deref()))?)
    }

    /// A chunk's raw refs, or None if it has none or does not exist.
    fn get_chunk_raw_refs<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
        let refs = py.detach(|| self.inner.get_chunk_raw_refs(&id))?;
        refs.map(|refs| refs.iter().map(|r| convert::raw_ref_to_py(py, r)).collect())
            .transpose()
    }

    /// A chunk's ``(content_path, content_sha256)`` when both are set, else None.
    fn get_chunk_content_pointers(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<(String, String)>> {
        Ok(py.detach(|| self.inner.get_chunk_content_pointers(&id))?)
    }

    /// A chunk's ``content_path`` (whether or not its hash is set), else None.
    fn get_chunk_content_path(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<String>> {
        Ok(py.detach(|| self.inner.get_chunk_content_path(&id))?)
    }

    /// A summary's ``(content_path, content_sha256)`` when both are set, else None.
    fn get_summary_content_pointers(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<(String, String)>> {
        Ok(py.detach(|| self.inner.get_summary_content_pointers(&id))?)
    }

    /// ``(id, content_path, content_sha256)`` of every summary with both
    /// set and ``deleted = 0``, by id.
    fn list_summaries_with_content_path(
        &self,
        py: Python<'_>,
    ) -> PyResult<Vec<(String, String, String)>> {
        Ok(py.detach(|| self.inner.list_summaries_with_content_path())?)
    }

    /// Deletes one chunk with its score and entity-index rows in one
    /// transaction; returns whether it existed (idempotent: a second call
    /// returns False and changes nothing).
    fn delete_chunk(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.delete_chunk(&id))?)
    }

    /// One :class:`memtree.SourceInfo` per source with chunks, ordered by
    /// kind then id, aggregated along the ``(source_kind, source_id,
    /// seq_in_source)`` index (no sort of the chunk table).
    fn list_sources<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let sources = py.detach(|| self.inner.list_sources())?;
        sources
            .iter()
            .map(|s| convert::source_info_to_py(py, s))
            .collect()
    }

    /// SQLite's query plan for :meth:`list_sources`.
    fn explain_list_sources(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.inner.explain_list_sources())?)
    }
}
