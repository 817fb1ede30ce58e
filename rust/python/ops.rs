//! Argument conversion and GIL release for the operations of `crate::ops`
//! (purge, backup, restore, compact, retention, owner erasure); the methods
//! that expose them delegate here in one line each.

use std::collections::HashMap;
use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::convert;
use super::imports;
use crate::db::store::Store;
use crate::jobs::retry::RetryPolicy;
use crate::jobs::JobStatus;
use crate::ops::{backup, compact, erase, purge, restore as restore_op, retention};
use crate::sys::clock::now_ms;

/// The cutoff of `older_than`: a `timedelta` (finished longer ago than
/// that) or an aware `datetime` (finished before it).
fn cutoff_ms(older_than: &Bound<'_, PyAny>) -> PyResult<i64> {
    let py = older_than.py();
    let api = imports::get(py)?;
    if older_than.is_instance(api.timedelta.bind(py))? {
        let age = convert::timedelta_ms(older_than, "older_than")?;
        if age < 0 {
            return Err(PyValueError::new_err("older_than: must not be negative"));
        }
        return Ok(now_ms().saturating_sub(age));
    }
    convert::to_ms(older_than, "older_than")
}

/// The statuses to purge; `None`: every finished status.
fn statuses(value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<JobStatus>> {
    let Some(value) = value else {
        return Ok(JobStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect());
    };
    convert::strs(value, "statuses")?
        .iter()
        .map(|name| {
            name.parse::<JobStatus>()
                .map_err(|_| PyValueError::new_err(format!("statuses: unknown status {name:?}")))
        })
        .collect()
}

/// `Jobs.purge(older_than, statuses=None)`.
pub fn purge_jobs(
    py: Python<'_>,
    store: &Store,
    older_than: &Bound<'_, PyAny>,
    statuses_arg: Option<&Bound<'_, PyAny>>,
) -> PyResult<usize> {
    let cutoff = cutoff_ms(older_than)?;
    let statuses = statuses(statuses_arg)?;
    let report = py.detach(|| purge::purge_jobs(store, cutoff, &statuses))?;
    Ok(report.deleted)
}

/// What :meth:`Store.backup` or :func:`restore` wrote.
#[pyclass(frozen, name = "CopyReport", module = "memtree")]
#[derive(Debug, Clone)]
pub struct PyCopyReport {
    path: PathBuf,
    bytes: u64,
    replaced: Option<PathBuf>,
    schema_version: i64,
    rows: Vec<(String, i64)>,
}

#[pymethods]
impl PyCopyReport {
    /// The backup written, or the store restored.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }
    /// Its size in bytes.
    #[getter]
    fn bytes(&self) -> u64 {
        self.bytes
    }
    /// ``restore`` only: the byte copy of the contents it replaced
    /// (``None`` when there was no store, or for a backup).
    #[getter]
    fn replaced(&self) -> Option<PathBuf> {
        self.replaced.clone()
    }
    /// The schema version (``user_version``) written.
    #[getter]
    fn schema_version(&self) -> i64 {
        self.schema_version
    }
    /// Rows per table, as verified in what was written.
    #[getter]
    fn rows(&self) -> HashMap<String, i64> {
        self.rows.iter().cloned().collect()
    }
    fn __repr__(&self) -> String {
        let replaced = self.replaced.as_ref().map_or_else(
            || "None".to_owned(),
            |p| format!("{:?}", p.display().to_string()),
        );
        format!(
            "CopyReport(path={:?}, bytes={}, replaced={replaced}, schema_version={})",
            self.path.display().to_string(),
            self.bytes,
            self.schema_version
        )
    }
}

/// `Store.backup(dest)`.
pub fn backup_store(py: Python<'_>, store: &Store, dest: PathBuf) -> PyResult<PyCopyReport> {
    let live = store.path().to_owned();
    let report = py.detach(|| backup::backup_file(&live, &dest))?;
    Ok(PyCopyReport {
        path: report.path,
        bytes: report.bytes,
        replaced: None,
        schema_version: report.schema_version,
        rows: report.rows,
    })
}

/// Writes the backup at ``backup`` INTO the store at ``path``, in place:
/// one SQLite transaction on the same file (never a rename or a replace,
/// so connections that hold it open, in any process, see the old contents
/// or the new through SQLite's own locking), after a byte copy of the
/// replaced contents is kept as ``<path>.pre-restore-<ms>`` (fsynced). The
/// backup is checked first (``integrity_check``, memtree's schema, not
/// newer than this build); the store is verified after and left in
/// TRUNCATE mode. A missing store is created from the backup (under a
/// temporary name, linked into place).
///
/// Refuses with ``BusyError`` while another process holds the store open —
/// best effort: only processes whose ``/proc/<pid>/fd`` this user can read
/// (Linux), since an idle open connection holds no lock to show it.
/// Connections of the calling process see the restored contents.
#[pyfunction]
fn restore(
    py: Python<'_>,
    #[pyo3(from_py_with = convert::arg::backup)] backup: PathBuf,
    #[pyo3(from_py_with = convert::arg::path)] path: PathBuf,
) -> PyResult<PyCopyReport> {
    let report = py.detach(|| restore_op::restore_file(&backup, &path))?;
    let bytes = std::fs::metadata(&report.path).map_or(0, |m| m.len());
    Ok(PyCopyReport {
        path: report.path,
        bytes,
        replaced: report.replaced,
        schema_version: report.schema_version,
        rows: report.rows,
    })
}

/// Adds `CopyReport` and `restore` to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCopyReport>()?;
    m.add_class::<PyCompactReport>()?;
    m.add_class::<PyErasureReport>()?;
    m.add_class::<PyFileSweep>()?;
    m.add_function(wrap_pyfunction!(restore, m)?)?;
    Ok(())
}

/// What :meth:`Store.compact` did.
#[pyclass(frozen, name = "CompactReport", module = "memtree")]
#[derive(Debug, Clone, Copy)]
pub struct PyCompactReport {
    /// The file's size before, in bytes.
    #[pyo3(get)]
    bytes_before: u64,
    /// The file's size after, in bytes.
    #[pyo3(get)]
    bytes_after: u64,
    /// Free pages before (``PRAGMA freelist_count``).
    #[pyo3(get)]
    free_pages_before: i64,
    /// Free pages after.
    #[pyo3(get)]
    free_pages_after: i64,
}

#[pymethods]
impl PyCompactReport {
    fn __repr__(&self) -> String {
        format!(
            "CompactReport(bytes_before={}, bytes_after={}, free_pages_before={}, \
             free_pages_after={})",
            self.bytes_before, self.bytes_after, self.free_pages_before, self.free_pages_after
        )
    }
}

/// `Store.compact()`.
pub fn compact_store(py: Python<'_>, store: &Store) -> PyResult<PyCompactReport> {
    let r = py.detach(|| compact::compact(store))?;
    Ok(PyCompactReport {
        bytes_before: r.bytes_before,
        bytes_after: r.bytes_after,
        free_pages_before: r.free_pages_before,
        free_pages_after: r.free_pages_after,
    })
}

/// The `retry` argument of `mark_failed` and `mark_failed_and_claim_next`:
/// `None` (the default back-off) or an object with `base` and `cap`
/// (`timedelta`) and `max_attempts` (`int` or `None`), such as
/// `memtree.RetryPolicy`. Checked before anything is written.
pub fn retry_policy(value: Option<&Bound<'_, PyAny>>) -> PyResult<RetryPolicy> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(RetryPolicy::default());
    };
    let max_attempts = value.getattr("max_attempts")?;
    let policy = RetryPolicy {
        base_ms: convert::timedelta_ms(&value.getattr("base")?, "retry.base")?,
        cap_ms: convert::timedelta_ms(&value.getattr("cap")?, "retry.cap")?,
        max_attempts: if max_attempts.is_none() {
            None
        } else {
            Some(convert::int64(&max_attempts, "retry.max_attempts")?)
        },
    };
    policy.validate()?;
    Ok(policy)
}

/// `Store.delete_chunks(older_than, *, source_kind, source_id, owner, since)`.
pub fn delete_chunks(
    py: Python<'_>,
    store: &Store,
    older_than: &Bound<'_, PyAny>,
    source_kind: Option<&Bound<'_, PyAny>>,
    source_id: Option<String>,
    owner: Option<String>,
    since: Option<&Bound<'_, PyAny>>,
) -> PyResult<usize> {
    let cutoff = cutoff_ms(older_than)?;
    let filter = super::convert::chunk_filter(source_kind, source_id, owner, since, None)?;
    Ok(py.detach(|| retention::delete_chunks(store, cutoff, &filter))?)
}

/// The `content_root` argument: `None` (``content/`` beside the database)
/// or a path.
fn content_root(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<PathBuf>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| convert::path(v, "content_root"))
        .transpose()
}

fn kept_files(kept: &[erase::KeptFile]) -> Vec<(String, &'static str)> {
    kept.iter()
        .map(|k| (k.path.clone(), k.reason.as_str()))
        .collect()
}

/// What :meth:`Store.erase_owner` deleted and removed.
#[pyclass(frozen, name = "ErasureReport", module = "memtree")]
#[derive(Debug, Clone)]
pub struct PyErasureReport {
    /// Chunks deleted.
    #[pyo3(get)]
    chunks: usize,
    /// Score rows deleted.
    #[pyo3(get)]
    scores: usize,
    /// Entity-index rows deleted.
    #[pyo3(get)]
    entity_rows: usize,
    /// Summaries kept that list an erased chunk among their children (trees
    /// have no owner and a summary may mix owners: resealing or deleting
    /// them is the application's choice).
    #[pyo3(get)]
    summaries_derived: usize,
    /// Content files removed.
    #[pyo3(get)]
    files_removed: usize,
    /// Content files named by the erased rows that were already gone.
    #[pyo3(get)]
    files_missing: usize,
    /// Content files left in place, as ``(content_path, reason)``.
    #[pyo3(get)]
    files_kept: Vec<(String, &'static str)>,
    /// Files still logged for removal after this call (an I/O error, or
    /// logged under another content root); a later open or
    /// :meth:`Store.sweep_erased_files` finishes them.
    #[pyo3(get)]
    files_pending: usize,
}

#[pymethods]
impl PyErasureReport {
    fn __repr__(&self) -> String {
        format!(
            "ErasureReport(chunks={}, scores={}, entity_rows={}, summaries_derived={}, \
             files_removed={}, files_missing={}, files_kept={}, files_pending={})",
            self.chunks,
            self.scores,
            self.entity_rows,
            self.summaries_derived,
            self.files_removed,
            self.files_missing,
            self.files_kept.len(),
            self.files_pending
        )
    }
}

/// What :meth:`Store.sweep_erased_files` did with the logged files.
#[pyclass(frozen, name = "FileSweep", module = "memtree")]
#[derive(Debug, Clone)]
pub struct PyFileSweep {
    /// Files removed.
    #[pyo3(get)]
    removed: usize,
    /// Logged files that were already gone.
    #[pyo3(get)]
    missing: usize,
    /// Files left in place, as ``(content_path, reason)``.
    #[pyo3(get)]
    kept: Vec<(String, &'static str)>,
    /// Files still logged for removal (an I/O error, or another root).
    #[pyo3(get)]
    pending: usize,
}

#[pymethods]
impl PyFileSweep {
    fn __repr__(&self) -> String {
        format!(
            "FileSweep(removed={}, missing={}, kept={}, pending={})",
            self.removed,
            self.missing,
            self.kept.len(),
            self.pending
        )
    }
}

/// `Store.erase_owner(owner, *, content_root=None)`.
pub fn erase_owner(
    py: Python<'_>,
    store: &Store,
    owner: String,
    root: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyErasureReport> {
    let root = content_root(root)?;
    let r = py.detach(|| erase::erase_owner(store, &owner, root.as_deref()))?;
    Ok(PyErasureReport {
        chunks: r.chunks,
        scores: r.scores,
        entity_rows: r.entity_rows,
        summaries_derived: r.summaries_derived,
        files_removed: r.files.removed,
        files_missing: r.files.missing,
        files_kept: kept_files(&r.files.kept),
        files_pending: r.files.pending,
    })
}

/// `Store.sweep_erased_files(*, content_root=None)`.
pub fn sweep_erased_files(
    py: Python<'_>,
    store: &Store,
    root: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyFileSweep> {
    let root = content_root(root)?;
    let r = py.detach(|| erase::sweep(store, root.as_deref()))?;
    Ok(PyFileSweep {
        removed: r.removed,
        missing: r.missing,
        kept: kept_files(&r.kept),
        pending: r.pending,
    })
}
