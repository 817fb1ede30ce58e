//! `memtree.Store`: argument conversion and GIL release around the core store.

use std::collections::HashMap;
use std::ffi::CString;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyType;
use pyo3::PyTypeInfo;

use super::chunk::PyChunk;
use super::convert::{self, arg};
use super::errors::JournalModeWarning;
use super::{paging, search, vector};
use crate::chunks::ChunkFilter;
use crate::chunks_paging::{ChunkPages, ListCursor};
use crate::store::Store;

/// A handle on one memtree database (see the stub for documentation).
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

/// The `list_chunks` keyword arguments as a core filter.
fn chunk_filter(
    source_kind: Option<&Bound<'_, PyAny>>,
    source_id: Option<String>,
    owner: Option<String>,
    since: Option<&Bound<'_, PyAny>>,
    until: Option<&Bound<'_, PyAny>>,
) -> PyResult<ChunkFilter> {
    Ok(ChunkFilter {
        source_kind: source_kind
            .map(|k| convert::source_kind(k, "source_kind"))
            .transpose()?,
        source_id,
        owner,
        since_ms: convert::opt_to_ms(since, "since")?,
        until_ms: convert::opt_to_ms(until, "until")?,
    })
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
        PyStore::open_with(py, || Store::open_file(&path))
    }

    /// Opens `<workspace>/memory_tree/chunks.db`, creating the folders.
    #[classmethod]
    fn open(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::workspace)] workspace: PathBuf,
    ) -> PyResult<Self> {
        PyStore::open_with(py, || Store::open_workspace(&workspace))
    }

    /// Clears the circuit breaker of a database path.
    #[staticmethod]
    fn invalidate(#[pyo3(from_py_with = arg::path)] path: PathBuf) -> PyResult<()> {
        Ok(crate::connection::invalidate(&path)?)
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_owned()
    }

    #[getter]
    fn journal_mode(&self) -> PyResult<String> {
        Ok(self.inner.journal_mode()?)
    }

    /// The job queue in this database (`memtree.Jobs`).
    #[getter]
    fn jobs(slf: &Bound<'_, Self>) -> super::jobs::PyJobs {
        super::jobs::PyJobs::new(slf)
    }

    /// The scores, entity index and hotness in this database (`memtree.Scores`).
    #[getter]
    fn scores(slf: &Bound<'_, Self>) -> super::scores::PyScores {
        super::scores::PyScores::new(slf)
    }

    /// The periodic side of the job queue (`memtree.Scheduler`).
    #[getter]
    fn scheduler(slf: &Bound<'_, Self>) -> super::scheduler::PyScheduler {
        super::scheduler::PyScheduler::new(slf)
    }

    /// The summary trees in this database (`memtree.Trees`).
    #[getter]
    fn trees(slf: &Bound<'_, Self>) -> super::trees::PyTrees {
        super::trees::PyTrees::new(slf)
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

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

    fn upsert_chunks(&self, py: Python<'_>, chunks: &Bound<'_, PyAny>) -> PyResult<usize> {
        let chunks = PyChunk::extract_all(chunks)?;
        Ok(py.detach(|| self.inner.upsert_chunks(&PyChunk::refs(&chunks)))?)
    }

    fn get_chunk(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<PyChunk>> {
        let found = py.detach(|| self.inner.get_chunk(&id))?;
        Ok(found.map(|inner| PyChunk { inner }))
    }

    fn get_chunks(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<Vec<Py<PyChunk>>> {
        let ids = convert::strs(ids, "ids")?;
        let found = py.detach(|| self.inner.get_chunks(&ids))?;
        PyChunk::wrap_all(py, found)
    }

    #[pyo3(signature = (
        *, source_kind=None, source_id=None, owner=None, since=None, until=None, limit=100,
        after=None
    ))]
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
        let filter = chunk_filter(source_kind, source_id, owner, since, until)?;
        let found = py.detach(|| self.inner.list_chunks_after(&filter, after.as_ref(), limit))?;
        PyChunk::wrap_all(py, found)
    }

    /// The query plan of `list_chunks` for these filters (for tests and tuning).
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
        let filter = chunk_filter(source_kind, source_id, owner, since, until)?;
        Ok(py.detach(|| {
            self.inner
                .explain_list_chunks_after(&filter, after.as_ref())
        })?)
    }

    #[pyo3(signature = (
        *, source_kind=None, source_id=None, owner=None, since=None, until=None, page_size=1000
    ))]
    #[allow(clippy::too_many_arguments)]
    fn iter_chunks(
        slf: Py<Self>,
        source_kind: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_source_id)] source_id: Option<String>,
        #[pyo3(from_py_with = arg::opt_owner)] owner: Option<String>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = paging::page_size_arg)] page_size: i64,
    ) -> PyResult<paging::PyChunkIterator> {
        let filter = chunk_filter(source_kind, source_id, owner, since, until)?;
        Ok(paging::PyChunkIterator::new(
            slf,
            ChunkPages::new(filter, page_size),
        ))
    }

    fn count_chunks(&self, py: Python<'_>) -> PyResult<i64> {
        Ok(py.detach(|| self.inner.count_chunks())?)
    }

    fn get_lifecycle_status(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<String>> {
        Ok(py.detach(|| self.inner.lifecycle_status(&id))?)
    }

    fn set_lifecycle_status(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::status)] status: String,
    ) -> PyResult<usize> {
        let ids = convert::strs(ids, "ids")?;
        Ok(py.detach(|| self.inner.set_lifecycle_status(&ids, &status))?)
    }

    fn count_by_lifecycle_status(&self, py: Python<'_>) -> PyResult<HashMap<String, i64>> {
        Ok(py.detach(|| self.inner.count_by_lifecycle_status())?)
    }

    fn is_source_ingested(
        &self,
        py: Python<'_>,
        source_kind: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::source_id)] source_id: String,
    ) -> PyResult<bool> {
        let kind = convert::source_kind(source_kind, "source_kind")?;
        Ok(py.detach(|| self.inner.is_source_ingested(kind, &source_id))?)
    }

    fn claim_source(
        &self,
        py: Python<'_>,
        source_kind: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::source_id)] source_id: String,
    ) -> PyResult<bool> {
        let kind = convert::source_kind(source_kind, "source_kind")?;
        Ok(py.detach(|| self.inner.claim_source(kind, &source_id))?)
    }

    fn delete_source(
        &self,
        py: Python<'_>,
        source_kind: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::source_id)] source_id: String,
    ) -> PyResult<usize> {
        let kind = convert::source_kind(source_kind, "source_kind")?;
        Ok(py.detach(|| self.inner.delete_source(kind, &source_id))?)
    }

    fn delete_owner(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::owner)] owner: String,
    ) -> PyResult<usize> {
        Ok(py.detach(|| self.inner.delete_owner(&owner))?)
    }

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

    fn connection_settings(&self, py: Python<'_>) -> PyResult<HashMap<String, String>> {
        Ok(py
            .detach(|| self.inner.connection_settings())?
            .into_iter()
            .collect())
    }

    #[pyo3(signature = (*, full=false))]
    fn check(&self, py: Python<'_>, full: bool) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.inner.check(full))?)
    }

    fn set_chunk_embedding(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
        vector: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let vector = convert::vector(vector, "vector")?;
        Ok(py.detach(|| self.inner.set_chunk_embedding(&id, vector.as_deref()))?)
    }

    fn get_chunk_embedding<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let found = py.detach(|| self.inner.get_chunk_embedding(&id))?;
        found.map(|v| vector::float_array(py, &v)).transpose()
    }

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

    fn get_chunk_embeddings(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
    ) -> PyResult<vector::PyEmbeddings> {
        let ids = convert::strs(ids, "ids")?;
        let rows = py.detach(|| self.inner.get_chunk_embeddings(&ids))?;
        Ok(vector::PyEmbeddings::new(py, rows))
    }

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
        include_summaries: bool,
    ) -> PyResult<Vec<search::PyHit>> {
        let filter = chunk_filter(source_kind, source_id, owner, since, until)?;
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
    #[allow(clippy::too_many_arguments)]
    fn search_text(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = search::query_arg)] query: String,
        #[pyo3(from_py_with = arg::k)] k: i64,
        source_kind: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_source_id)] source_id: Option<String>,
        #[pyo3(from_py_with = arg::opt_owner)] owner: Option<String>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        include_summaries: bool,
        #[pyo3(from_py_with = search::syntax_arg)] syntax: String,
    ) -> PyResult<Vec<search::PyHit>> {
        let filter = chunk_filter(source_kind, source_id, owner, since, until)?;
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
        include_summaries: bool,
    ) -> PyResult<Vec<search::PyHit>> {
        let filter = chunk_filter(source_kind, source_id, owner, since, until)?;
        search::search(py, &self.inner, text, vector, k, &filter, include_summaries)
    }

    fn set_chunk_raw_refs(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
        refs: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let refs = convert::raw_refs(refs, "refs")?;
        Ok(py.detach(|| self.inner.set_chunk_raw_refs(&id, refs.as_deref()))?)
    }

    fn get_chunk_raw_refs<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
        let refs = py.detach(|| self.inner.get_chunk_raw_refs(&id))?;
        refs.map(|refs| refs.iter().map(|r| convert::raw_ref_to_py(py, r)).collect())
            .transpose()
    }

    fn get_chunk_content_pointers(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<(String, String)>> {
        Ok(py.detach(|| self.inner.get_chunk_content_pointers(&id))?)
    }

    fn get_chunk_content_path(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<String>> {
        Ok(py.detach(|| self.inner.get_chunk_content_path(&id))?)
    }

    fn get_summary_content_pointers(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<(String, String)>> {
        Ok(py.detach(|| self.inner.get_summary_content_pointers(&id))?)
    }

    fn list_summaries_with_content_path(
        &self,
        py: Python<'_>,
    ) -> PyResult<Vec<(String, String, String)>> {
        Ok(py.detach(|| self.inner.list_summaries_with_content_path())?)
    }

    fn delete_chunk(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.delete_chunk(&id))?)
    }

    fn list_sources<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let sources = py.detach(|| self.inner.list_sources())?;
        sources
            .iter()
            .map(|s| convert::source_info_to_py(py, s))
            .collect()
    }

    /// The query plan of `list_sources` (for tests and tuning).
    fn explain_list_sources(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.inner.explain_list_sources())?)
    }
}
