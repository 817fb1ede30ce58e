//! The PyO3 glue: the `memtree._native` extension module.
//!
//! Only argument conversion, GIL release and error mapping live here; every
//! database operation is the pure core's. The product API is this module;
//! the hooks of tests and benchmarks live in the submodules
//! `memtree._native.testing` and `memtree._native.bench`. Arguments are converted to owned
//! Rust values first, then the GIL is released (`py.detach`) and the core
//! takes its connection mutex inside the detached closure.

mod chunk;
mod convert;
mod errors;
mod hooks;
mod imports;
mod job_kinds;
mod jobs;
mod logging;
mod ops;
mod paging;
mod payload;
mod scheduler;
mod scores;
mod search;
mod store;
mod trees;

use pyo3::prelude::*;

use crate::db::connection;
use crate::error::{classify, codes};

/// The class of an extended result code: ``transient_io``, ``busy``,
/// ``disk_full``, ``corrupt``, ``constraint`` or ``permanent``.
#[pyfunction]
fn classify_code(code: i32) -> &'static str {
    classify::classify_code(code).as_str()
}

/// SQLite's name for a result code, e.g. ``SQLITE_IOERR_SHMOPEN``.
#[pyfunction]
fn code_name(code: i32) -> Option<&'static str> {
    codes::name(code)
}

/// Every result code memtree knows, as ``(value, name)`` sorted by value.
#[pyfunction]
fn result_codes() -> Vec<(i32, &'static str)> {
    codes::ALL.to_vec()
}

/// The version of the SQLite compiled into memtree.
#[pyfunction]
fn sqlite_version() -> &'static str {
    rusqlite::version()
}

/// Stranded side files beside the database file ``path``: ``(file, None,
/// what to do about it)``. Nothing is opened or read.
#[pyfunction]
fn stranded_files(
    #[pyo3(from_py_with = convert::arg::path)] path: std::path::PathBuf,
) -> PyResult<Vec<(String, Option<u64>, String)>> {
    let db = connection::canonical_db_path(&path)?;
    Ok(crate::recovery::salvage::describe_stranded(&db)
        .into_iter()
        .map(|(p, rows, note)| (p.display().to_string(), rows, note))
        .collect())
}

/// Refuses, as ``Store(path)`` would, a path that cannot be a memtree
/// database: raises ``memtree.PathRefusedError`` for a missing folder, a
/// FIFO, device, socket, directory or symbolic link at the database or a
/// side-file name, or a non-empty file without the SQLite header; with
/// ``must_exist``, for a missing file too. Looks at names (``lstat``) and
/// reads 16 header bytes: never blocks, never changes anything. For a
/// process with no connection on the file (the command line): closing the
/// descriptor that read the header drops every POSIX lock the process holds
/// on the file.
#[pyfunction]
#[pyo3(signature = (path, *, must_exist=false))]
fn check_path(
    #[pyo3(from_py_with = convert::arg::path)] path: std::path::PathBuf,
    #[pyo3(from_py_with = convert::arg::must_exist)] must_exist: bool,
) -> PyResult<()> {
    use crate::sys::path_guard::{check_database_path, Claim};
    Ok(check_database_path(&path, Claim::Explicit, must_exist)?)
}

/// What [`adopt_file`] returns: rows by table, chunk rows, file removed.
type AdoptOutcome = (Vec<(String, u64)>, u64, bool);

/// Merges the rows of ``file`` (a memtree database, or a ``-wal`` an
/// earlier release moved aside) that the database at ``path`` lacks, after
/// checking it; nothing is written on a dry run. Returns the rows by table,
/// the chunk rows, and whether ``file`` was removed.
#[pyfunction]
fn adopt_file(
    py: Python<'_>,
    #[pyo3(from_py_with = convert::arg::path)] path: std::path::PathBuf,
    #[pyo3(from_py_with = convert::arg::path)] file: std::path::PathBuf,
    #[pyo3(from_py_with = convert::arg::dry_run)] dry_run: bool,
) -> PyResult<AdoptOutcome> {
    let report = py.detach(|| connection::adopt_file(&path, &file, dry_run))?;
    Ok((report.rows, report.chunks, report.removed))
}

/// The ``user_version`` of a fully migrated database.
#[pyfunction]
fn schema_version() -> i64 {
    crate::schema::CURRENT_VERSION
}

/// Adds `memtree._native.<name>`, filled by `fill`, importable as such.
///
/// The functions see the full dotted `__name__` (set before they are added),
/// and the module goes into `sys.modules`: an import statement looks there,
/// not at the attributes of an extension module, which is no package.
fn add_submodule(
    parent: &Bound<'_, PyModule>,
    name: &str,
    fill: impl FnOnce(&Bound<'_, PyModule>) -> PyResult<()>,
) -> PyResult<()> {
    let py = parent.py();
    let full = format!("{}.{name}", parent.name()?);
    let sub = PyModule::new(py, name)?;
    sub.setattr("__name__", &full)?;
    fill(&sub)?;
    parent.add(name, &sub)?;
    py.import("sys")?.getattr("modules")?.set_item(full, &sub)?;
    Ok(())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::install();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<chunk::PyChunk>()?;
    m.add_class::<store::PyStore>()?;
    m.add_class::<search::PyHit>()?;
    m.add_class::<convert::vector::PyEmbeddings>()?;
    m.add_function(wrap_pyfunction!(classify_code, m)?)?;
    m.add_function(wrap_pyfunction!(code_name, m)?)?;
    m.add_function(wrap_pyfunction!(errors::error_from_code, m)?)?;
    m.add_function(wrap_pyfunction!(result_codes, m)?)?;
    m.add_function(wrap_pyfunction!(sqlite_version, m)?)?;
    m.add_function(wrap_pyfunction!(schema_version, m)?)?;
    m.add_function(wrap_pyfunction!(stranded_files, m)?)?;
    m.add_function(wrap_pyfunction!(check_path, m)?)?;
    m.add_function(wrap_pyfunction!(adopt_file, m)?)?;
    add_submodule(m, "testing", hooks::testing::register)?;
    add_submodule(m, "bench", hooks::bench::register)?;
    jobs::register(m)?;
    trees::register(m)?;
    job_kinds::register(m)?;
    scheduler::register(m)?;
    scores::register(m)?;
    ops::register(m)?;
    Ok(())
}
