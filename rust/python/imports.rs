//! The Python objects the glue needs, imported once per interpreter.
//!
//! One `PyOnceLock` holds them all: the first conversion pays for the
//! imports, every later one reads a field. (The exception classes are
//! imported by `pyo3::import_exception!` in `errors.rs`, which caches them
//! the same way.)

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// The cached objects; see [`get`].
pub struct Imports {
    /// `datetime.datetime`.
    pub datetime: Py<PyAny>,
    /// `datetime.timedelta`.
    pub timedelta: Py<PyAny>,
    /// `datetime(1970, 1, 1, tzinfo=timezone.utc)`.
    pub epoch: Py<PyAny>,
    /// `datetime.timezone.utc` (a singleton: the time conversion compares
    /// identity).
    pub utc: Py<PyAny>,
    /// `timedelta(milliseconds=1)`.
    pub one_ms: Py<PyAny>,
    /// `json.loads`.
    pub json_loads: Py<PyAny>,
    /// `memtree.SourceKind` (defined in `memtree._types`).
    pub source_kind: Py<PyAny>,
    /// `memtree.JobStatus` (defined in `memtree._types`).
    pub job_status: Py<PyAny>,
    /// `memtree.RawRef` (defined in `memtree._types`).
    pub raw_ref: Py<PyAny>,
    /// `memtree.SourceInfo` (defined in `memtree._types`).
    pub source_info: Py<PyAny>,
    /// `functools.partial`.
    pub partial: Py<PyAny>,
    /// `os.fspath`.
    pub fspath: Py<PyAny>,
    /// `os.fsencode`.
    pub fsencode: Py<PyAny>,
    /// `logging.getLogger`, taken from `memtree._logging`: importing that
    /// module gives every memtree logger its `db_path` filter before the
    /// first record (`import memtree` itself does not import `logging`).
    pub get_logger: Py<PyAny>,
}

static IMPORTS: PyOnceLock<Imports> = PyOnceLock::new();

/// The cached objects, imported on first use.
pub fn get(py: Python<'_>) -> PyResult<&Imports> {
    IMPORTS.get_or_try_init(py, || {
        let datetime_module = py.import("datetime")?;
        let datetime = datetime_module.getattr("datetime")?;
        let timedelta = datetime_module.getattr("timedelta")?;
        let utc = datetime_module.getattr("timezone")?.getattr("utc")?;
        let epoch = datetime.call((1970, 1, 1, 0, 0, 0, 0, &utc), None)?;
        let one_ms = timedelta.call((0, 0, 1000), None)?;
        let json = py.import("json")?;
        let os = py.import("os")?;
        let types = py.import("memtree._types")?;
        Ok(Imports {
            datetime: datetime.unbind(),
            timedelta: timedelta.unbind(),
            epoch: epoch.unbind(),
            utc: utc.unbind(),
            one_ms: one_ms.unbind(),
            json_loads: json.getattr("loads")?.unbind(),
            source_kind: types.getattr("SourceKind")?.unbind(),
            job_status: types.getattr("JobStatus")?.unbind(),
            raw_ref: types.getattr("RawRef")?.unbind(),
            source_info: types.getattr("SourceInfo")?.unbind(),
            partial: py.import("functools")?.getattr("partial")?.unbind(),
            fspath: os.getattr("fspath")?.unbind(),
            fsencode: os.getattr("fsencode")?.unbind(),
            get_logger: py
                .import("memtree._logging")?
                .getattr("get_logger")?
                .unbind(),
        })
    })
}
