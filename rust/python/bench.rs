//! `memtree._native.bench`: the core's measured commit loop, the pure-SQL
//! baseline and the generated rows (for `memtree.bench` and `benches/`), with
//! the GIL released for every database call; out of the product namespace.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::chunk::PyChunk;
use crate::bench;

/// One timed commit: `(nanoseconds, syncs_db, syncs_journal, syncs_wal,
/// syncs_dir, syncs_other, bytes_written)`.
type Sample = (u64, u64, u64, u64, u64, u64, u64);

/// Times `commits` commits of `batch` generated chunks on a fresh connection
/// with the given journal mode and synchronous level; returns the journal
/// mode SQLite reported and one sample per commit.
#[pyfunction]
#[pyo3(signature = (path, journal_mode, synchronous, batch, commits, warmup=1))]
fn commits(
    py: Python<'_>,
    #[pyo3(from_py_with = super::convert::arg::path)] path: PathBuf,
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
            )
        })
        .collect();
    Ok((run.journal_mode, samples))
}

/// Nanoseconds SQLite alone takes to insert generated chunks `start..start +
/// count` with one `INSERT … SELECT` transaction (TRUNCATE + FULL).
#[pyfunction]
fn insert_select(
    py: Python<'_>,
    #[pyo3(from_py_with = super::convert::arg::path)] path: PathBuf,
    start: u64,
    count: usize,
) -> PyResult<u64> {
    let elapsed = py.detach(|| bench::insert_select(&path, start, count))?;
    Ok(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
}

/// Generated chunks `start..start + count` as `Chunk` objects.
#[pyfunction]
fn chunks(py: Python<'_>, start: u64, count: usize) -> PyResult<Vec<Py<PyChunk>>> {
    PyChunk::wrap_all(py, bench::bench_chunks(start, count))
}

/// Generated chunks as tuples in the upsert statement's parameter order
/// (tags as their JSON text, the embedding as a little-endian blob).
#[pyfunction]
fn rows(py: Python<'_>, start: u64, count: usize) -> PyResult<Vec<Bound<'_, PyTuple>>> {
    bench::bench_chunks(start, count)
        .into_iter()
        .map(|c| {
            let tags =
                serde_json::to_string(&c.tags).map_err(|e| PyValueError::new_err(e.to_string()))?;
            let embedding = c
                .embedding
                .as_deref()
                .map(|v| PyBytes::new(py, &crate::chunk::embedding_to_blob(v)));
            // PyO3 converts tuples of at most 12 items; a row has 15.
            let items: [Bound<'_, PyAny>; 15] = [
                c.id.into_pyobject(py)?.into_any(),
                c.content.into_pyobject(py)?.into_any(),
                c.source_kind.as_str().into_pyobject(py)?.into_any(),
                c.source_id.into_pyobject(py)?.into_any(),
                c.source_ref.into_pyobject(py)?.into_any(),
                c.owner.into_pyobject(py)?.into_any(),
                c.timestamp_ms.into_pyobject(py)?.into_any(),
                c.time_range_start_ms.into_pyobject(py)?.into_any(),
                c.time_range_end_ms.into_pyobject(py)?.into_any(),
                tags.into_pyobject(py)?.into_any(),
                c.token_count.into_pyobject(py)?.into_any(),
                c.seq_in_source.into_pyobject(py)?.into_any(),
                c.created_at_ms.into_pyobject(py)?.into_any(),
                c.lifecycle_status.into_pyobject(py)?.into_any(),
                embedding.into_pyobject(py)?.into_any(),
            ];
            PyTuple::new(py, items)
        })
        .collect()
}

/// The store's upsert statement (for baselines that must run the same SQL).
#[pyfunction]
fn upsert_sql() -> &'static str {
    crate::store::UPSERT_SQL
}

/// Fills `memtree._native.bench`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(commits, m)?)?;
    m.add_function(wrap_pyfunction!(insert_select, m)?)?;
    m.add_function(wrap_pyfunction!(chunks, m)?)?;
    m.add_function(wrap_pyfunction!(rows, m)?)?;
    m.add_function(wrap_pyfunction!(upsert_sql, m)?)?;
    Ok(())
}
