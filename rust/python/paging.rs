//! `Store.iter_chunks` and the `after` argument of `Store.list_chunks`: the
//! cursor taken from a `memtree.Chunk`, and the iterator that reads one page
//! per step with the GIL released.

use std::collections::VecDeque;
use std::sync::Mutex;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;

use super::chunk::PyChunk;
use super::store::PyStore;
use crate::chunks::packed::PackedChunk;
use crate::chunks::paging::{ChunkPages, ListCursor};

/// The `after` argument: the position of a `memtree.Chunk`, or None.
pub fn after_arg(value: &Bound<'_, PyAny>) -> PyResult<Option<ListCursor>> {
    if value.is_none() {
        return Ok(None);
    }
    match value.cast::<PyChunk>() {
        Ok(chunk) => Ok(Some(ListCursor::of(chunk.get().chunk()))),
        Err(_) => Err(PyTypeError::new_err(format!(
            "after: expected memtree.Chunk or None, got {}",
            value.get_type().name()?
        ))),
    }
}

/// The iterator `Store.iter_chunks` returns (see the stub).
#[pyclass(name = "ChunkIterator", module = "memtree")]
pub struct PyChunkIterator {
    store: Py<PyStore>,
    /// The pages read so far and the rows of the current one not yet given.
    state: Mutex<(ChunkPages, VecDeque<PackedChunk>)>,
}

impl PyChunkIterator {
    /// An iterator over `pages`, read through `store`.
    pub fn new(store: Py<PyStore>, pages: ChunkPages) -> Self {
        PyChunkIterator {
            store,
            state: Mutex::new((pages, VecDeque::new())),
        }
    }
}

#[pymethods]
impl PyChunkIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyChunk>> {
        let store = self.store.get();
        // Waits for the lock detached: a thread that holds it is reading a
        // page detached and needs the interpreter back to finish.
        let mut state = self
            .state
            .lock_py_attached(py)
            .unwrap_or_else(|p| p.into_inner());
        let (pages, buffered) = &mut *state;
        if buffered.is_empty() {
            let page = py.detach(|| pages.next_page(&store.inner))?;
            buffered.extend(page);
        }
        Ok(buffered.pop_front().map(PyChunk::packed))
    }

    /// The rows of the page last read not yet given (`operator.length_hint`):
    /// `AsyncStore.iter_chunks` takes them with the row that read the page,
    /// so each of its trips to a worker thread reads exactly one page, of
    /// the size this iterator clamped, with no copy of that rule in Python.
    fn __length_hint__(&self, py: Python<'_>) -> usize {
        let state = self
            .state
            .lock_py_attached(py)
            .unwrap_or_else(|p| p.into_inner());
        state.1.len()
    }
}
