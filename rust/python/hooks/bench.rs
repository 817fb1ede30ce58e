//! `memtree._native.bench`: the core's measured commit loop, the pure-SQL
//! baseline and the generated rows (for `memtree.bench` and `benches/`), with
//! the GIL released for every database call; out of the product namespace.

use std::path::PathBuf;
use std::time::Instant;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use rusqlite::types::Value;

use crate::bench;
use crate::python::chunk::PyChunk;
use crate::python::store::PyStore;
// Aliased: `chunks` is also the name of the Python function below.
use crate::chunks::row as chunk_sql;

/// One timed commit: `(nanoseconds, syncs_db, syncs_journal, syncs_wal,
/// syncs_dir, syncs_other, bytes_written, truncates, deletes)`. The last two
/// tell the rollback modes apart: TRUNCATE calls `xTruncate` on the journal
/// every commit (the call an antivirus-held handle fails on Windows), DELETE
/// calls `xDelete`, PERSIST neither.
type Sample = (u64, u64, u64, u64, u64, u64, u64, u64, u64);

/// Times ``commits`` commits of ``batch`` generated chunks (after ``warmup``
/// untimed ones) on a fresh connection through memtree's VFS with memtree's
/// schema and upsert, in the given journal mode and synchronous level.
/// Returns the journal mode SQLite reported and per commit ``(ns, syncs_db,
/// syncs_journal, syncs_wal, syncs_dir, syncs_other, bytes_written,
/// truncates, deletes)``: ``truncates`` counts ``xTruncate`` calls (TRUNCATE
/// truncates its journal each commit, PERSIST zeroes the header instead),
/// ``deletes`` ``xDelete`` calls (DELETE removes the journal).
#[pyfunction]
#[pyo3(signature = (path, journal_mode, synchronous, batch, commits, warmup=1))]
fn commits(
    py: Python<'_>,
    #[pyo3(from_py_with = crate::python::convert::arg::path)] path: PathBuf,
    journal_mode: String,
    synchronous: String,
    batch: usize,
    commits: usize,
    warmup: usize,
) -> PyResult<(String, Vec<Sample>)> {
    let run = py.detach(|| {
        bench::run_commits(&path, &journal_mode, &synchronous, batch, commits, warmup)
    })?;
    let samples = run
        .samples
        .iter()
        .map(|s| {
            let io = &s.io;
            (
                u64::try_from(s.elapsed.as_nanos()).unwrap_or(u64::MAX),
                io.syncs_db,
                io.syncs_journal,
                io.syncs_wal,
                io.syncs_dir,
                io.syncs_other,
                io.bytes_written,
                io.truncates,
                io.deletes,
            )
        })
        .collect();
    Ok((run.journal_mode, samples))
}

/// Nanoseconds SQLite alone takes to insert generated chunks ``start ..
/// start + count`` with one ``INSERT … SELECT`` transaction (TRUNCATE+FULL).
#[pyfunction]
fn insert_select(
    py: Python<'_>,
    #[pyo3(from_py_with = crate::python::convert::arg::path)] path: PathBuf,
    start: u64,
    count: usize,
) -> PyResult<u64> {
    let elapsed = py.detach(|| bench::insert_select(&path, start, count))?;
    Ok(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
}

/// Generated chunks ``start .. start + count`` (~500-byte content).
#[pyfunction]
fn chunks(py: Python<'_>, start: u64, count: usize) -> PyResult<Vec<Py<PyChunk>>> {
    PyChunk::wrap_all(py, bench::bench_chunks(start, count))
}

/// The generated chunks as tuples in the upsert statement's parameter order.
#[pyfunction]
fn rows(py: Python<'_>, start: u64, count: usize) -> PyResult<Vec<Bound<'_, PyTuple>>> {
    bench::bench_chunks(start, count)
        .iter()
        .map(|c| {
            let values =
                chunk_sql::chunk_row(c).map_err(|e| PyValueError::new_err(e.to_string()))?;
            let items = values
                .into_iter()
                .map(|v| match v {
                    Value::Null => Ok(py.None().into_bound(py)),
                    Value::Integer(i) => Ok(i.into_pyobject(py)?.into_any()),
                    Value::Real(f) => Ok(f.into_pyobject(py)?.into_any()),
                    Value::Text(t) => Ok(t.into_pyobject(py)?.into_any()),
                    Value::Blob(b) => Ok(PyBytes::new(py, &b).into_any()),
                })
                .collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, items)
        })
        .collect()
}

/// The chunk columns, in the order of :func:`rows` and of the upsert
/// statement's parameters.
#[pyfunction]
fn chunk_columns() -> Vec<&'static str> {
    chunk_sql::CHUNK_COLUMNS.to_vec()
}

/// The store's upsert statement.
#[pyfunction]
fn upsert_sql() -> &'static str {
    &chunk_sql::UPSERT_SQL
}

/// The two inner phases of ``store.trees.walk(summary_id, depth)``, in
/// nanoseconds: ``(sql, core)``. ``sql`` runs the walk's statement to its
/// last row without reading a column; ``core`` is the whole core walk (the
/// statement, every row decoded, the walk's order found: what ``walk``'s
/// glue gets), with no Python object built. The caller times ``walk``
/// itself: the rest is building the objects (and freeing them).
#[pyfunction]
#[pyo3(signature = (store, summary_id, depth=None))]
fn walk_phases(
    py: Python<'_>,
    store: &Bound<'_, PyStore>,
    summary_id: String,
    depth: Option<i64>,
) -> PyResult<(u64, u64)> {
    let core = &store.get().inner;
    let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    py.detach(|| {
        let trees = core.trees();
        let start = Instant::now();
        trees.walk_rows(&summary_id, depth)?;
        let sql = start.elapsed();
        let start = Instant::now();
        trees.walk_subtree(&summary_id, depth)?;
        Ok::<_, crate::error::Error>((nanos(sql), nanos(start.elapsed())))
    })
    .map_err(PyErr::from)
}

/// Fills `memtree._native.bench`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(commits, m)?)?;
    m.add_function(wrap_pyfunction!(insert_select, m)?)?;
    m.add_function(wrap_pyfunction!(chunks, m)?)?;
    m.add_function(wrap_pyfunction!(rows, m)?)?;
    m.add_function(wrap_pyfunction!(chunk_columns, m)?)?;
    m.add_function(wrap_pyfunction!(upsert_sql, m)?)?;
    m.add_function(wrap_pyfunction!(walk_phases, m)?)?;
    Ok(())
}
