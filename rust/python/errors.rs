//! The one place core errors become Python exceptions.
//!
//! The exception classes are defined once, in Python (`memtree.errors`); the
//! class for a SQLite failure is picked by the core's classifier and built by
//! `memtree.errors._from_native`, so Python and Rust cannot disagree.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::codes;
use crate::error::Error;

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// `memtree.errors`, imported once.
pub fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS_MODULE
        .get_or_try_init(py, || Ok(py.import("memtree.errors")?.unbind()))
        .map(|m| m.bind(py))
}

/// Builds the `memtree.errors` exception named by `kind` (an error class such
/// as `"transient_io"`, or `"circuit_open"`, `"closed"`, `"schema_too_new"`).
fn memtree_error(
    py: Python<'_>,
    kind: &str,
    code: i32,
    message: String,
    path: Option<String>,
    quarantined: Option<String>,
) -> PyResult<PyErr> {
    let exc = errors_module(py)?.getattr("_from_native")?.call1((
        kind,
        code,
        message,
        path,
        quarantined,
    ))?;
    Ok(PyErr::from_value(exc))
}

impl From<Error> for PyErr {
    #[cold]
    fn from(err: Error) -> PyErr {
        let message = err.to_string();
        match err {
            Error::InvalidInput { .. } => PyValueError::new_err(message),
            other => Python::attach(|py| {
                let (kind, code, path, quarantined) = match &other {
                    Error::Closed => ("closed", codes::MISUSE, None, None),
                    Error::Forked { path } => ("forked", codes::MISUSE, Some(path), None),
                    Error::SchemaTooNew { path, .. } => {
                        ("schema_too_new", codes::ERROR, Some(path), None)
                    }
                    Error::CircuitOpen {
                        path, last_code, ..
                    } => (
                        "circuit_open",
                        last_code.unwrap_or(codes::CANTOPEN),
                        Some(path),
                        None,
                    ),
                    Error::Quarantined {
                        path, quarantined, ..
                    } => (
                        "corrupt",
                        other.sqlite_code().unwrap_or(codes::CORRUPT),
                        Some(path),
                        Some(quarantined),
                    ),
                    Error::NotMemtree { path, .. } => {
                        ("not_memtree", codes::ERROR, Some(path), None)
                    }
                    // An operating-system failure outside SQLite is reported
                    // like SQLite's own: its class and the code it stands for
                    // (ENOSPC is SQLITE_FULL, ...), never as a bare OSError.
                    Error::Sqlite { path, .. } | Error::Io { path, .. } => (
                        other.class().as_str(),
                        // A failure without a code (a value SQLite returned
                        // that memtree could not convert) is SQLITE_ERROR.
                        other.sqlite_code().unwrap_or(codes::ERROR),
                        Some(path),
                        None,
                    ),
                    Error::LeaseLost { .. } => ("lease_lost", codes::ERROR, None, None),
                    Error::InvalidInput { .. } => unreachable!("handled above"),
                };
                let path = path.map(|p| p.display().to_string());
                let quarantined = quarantined.map(|p| p.display().to_string());
                memtree_error(py, kind, code, message, path, quarantined)
                    .unwrap_or_else(|import_failure| import_failure)
            }),
        }
    }
}
