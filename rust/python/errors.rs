//! The one place core errors become Python exceptions.
//!
//! The exception classes are defined once, in Python (`memtree.errors`, with
//! their docstrings and attributes), and imported here with
//! `pyo3::import_exception!`. The class is chosen in Rust, in two matches: the
//! classifier's [`ErrorClass`] for a SQLite (or operating-system) failure, the
//! [`Error`] variant for everything else. No string key joins the two sides.

use std::path::Path;

use pyo3::exceptions::{PyBaseException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use pyo3::PyTypeInfo;

use crate::error::classify::{self, ErrorClass};
use crate::error::codes;
use crate::error::Error;

pyo3::import_exception!(memtree.errors, TransientIOError);
pyo3::import_exception!(memtree.errors, BusyError);
pyo3::import_exception!(memtree.errors, DiskFullError);
pyo3::import_exception!(memtree.errors, CorruptDatabaseError);
pyo3::import_exception!(memtree.errors, ConstraintError);
pyo3::import_exception!(memtree.errors, PermanentError);
pyo3::import_exception!(memtree.errors, CircuitOpenError);
pyo3::import_exception!(memtree.errors, StoreClosedError);
pyo3::import_exception!(memtree.errors, ForkedStoreError);
pyo3::import_exception!(memtree.errors, SchemaVersionError);
pyo3::import_exception!(memtree.errors, NotMemtreeDatabaseError);
pyo3::import_exception!(memtree.errors, LeaseLostError);
pyo3::import_exception!(memtree.errors, JobCancelledError);
pyo3::import_exception!(memtree.errors, PathRefusedError);
pyo3::import_exception!(memtree.errors, StaleBufferError);
pyo3::import_exception!(memtree.errors, JournalModeWarning);

/// The exception class of a classifier class.
pub fn class_for(py: Python<'_>, class: ErrorClass) -> Bound<'_, PyType> {
    match class {
        ErrorClass::TransientIo => TransientIOError::type_object(py),
        ErrorClass::Busy => BusyError::type_object(py),
        ErrorClass::DiskFull => DiskFullError::type_object(py),
        ErrorClass::Corrupt => CorruptDatabaseError::type_object(py),
        ErrorClass::Constraint => ConstraintError::type_object(py),
        ErrorClass::Permanent => PermanentError::type_object(py),
    }
}

/// What an exception is built from: its class, the extended result code it
/// reports, the database file and, for a quarantine, where the file went.
struct Parts<'a, 'py> {
    class: Bound<'py, PyType>,
    code: i32,
    path: Option<&'a Path>,
    quarantined: Option<&'a Path>,
}

/// The one match from a core error to its exception. `InvalidInput` is not
/// here: it is a plain `ValueError` (see [`From<Error> for PyErr`]).
fn parts<'a, 'py>(py: Python<'py>, err: &'a Error) -> Parts<'a, 'py> {
    let (class, code, path, quarantined) = match err {
        Error::Closed => (StoreClosedError::type_object(py), codes::MISUSE, None, None),
        Error::Forked { path } => (
            ForkedStoreError::type_object(py),
            codes::MISUSE,
            Some(path),
            None,
        ),
        Error::SchemaTooNew { path, .. } => (
            SchemaVersionError::type_object(py),
            codes::ERROR,
            Some(path),
            None,
        ),
        Error::NotMemtree { path, .. } => (
            NotMemtreeDatabaseError::type_object(py),
            codes::ERROR,
            Some(path),
            None,
        ),
        Error::CircuitOpen {
            path, last_code, ..
        } => (
            CircuitOpenError::type_object(py),
            last_code.unwrap_or(codes::CANTOPEN),
            Some(path),
            None,
        ),
        Error::Quarantined {
            path, quarantined, ..
        } => (
            CorruptDatabaseError::type_object(py),
            err.sqlite_code().unwrap_or(codes::CORRUPT),
            Some(path),
            Some(quarantined),
        ),
        // An operating-system failure outside SQLite is reported like
        // SQLite's own: the class of the code it stands for (ENOSPC is
        // SQLITE_FULL, ...), never as a bare OSError.
        Error::Sqlite { path, .. } | Error::Io { path, .. } => (
            class_for(py, err.class()),
            // A failure without a code (a value SQLite returned that memtree
            // could not convert) is SQLITE_ERROR.
            err.sqlite_code().unwrap_or(codes::ERROR),
            Some(path),
            None,
        ),
        Error::LeaseLost {
            cancelled: true, ..
        } => (JobCancelledError::type_object(py), codes::ERROR, None, None),
        Error::LeaseLost { .. } => (LeaseLostError::type_object(py), codes::ERROR, None, None),
        Error::PathRefused { path, code, .. } => {
            (PathRefusedError::type_object(py), *code, Some(path), None)
        }
        Error::StaleBuffer { .. } => (StaleBufferError::type_object(py), codes::ERROR, None, None),
        // Never reached: `From<Error> for PyErr` raises a plain ValueError
        // for bad input before asking here.
        Error::InvalidInput { .. } => (PermanentError::type_object(py), codes::ERROR, None, None),
    };
    Parts {
        class,
        code,
        path: path.map(|p| p.as_path()),
        quarantined: quarantined.map(|p| p.as_path()),
    }
}

/// Builds the exception instance, so that `path` (a keyword argument) and
/// `quarantined_path` are set as `memtree.errors` documents them.
fn build(py: Python<'_>, err: &Error) -> PyResult<PyErr> {
    let Parts {
        class,
        code,
        path,
        quarantined,
    } = parts(py, err);
    let kwargs = PyDict::new(py);
    kwargs.set_item("path", path.map(|p| p.display().to_string()))?;
    let exc = class.call((err.to_string(), code), Some(&kwargs))?;
    if exc.is_instance_of::<CorruptDatabaseError>() {
        exc.setattr(
            "quarantined_path",
            quarantined.map(|p| p.display().to_string()),
        )?;
    }
    Ok(PyErr::from_value(exc))
}

impl From<Error> for PyErr {
    #[cold]
    fn from(err: Error) -> PyErr {
        // A side file memtree's VFS refused is `Error::PathRefused` already:
        // the core maps it where it builds the error
        // (`crate::vfs::sqlite_or_refused`), so nothing is mapped twice.
        match err {
            Error::InvalidInput { .. } => PyValueError::new_err(err.to_string()),
            other => Python::attach(|py| build(py, &other).unwrap_or_else(|failure| failure)),
        }
    }
}

/// The exception memtree raises for ``extended_code``, as an instance
/// (``memtree.errors.from_code``); an empty message becomes the code's name.
#[pyfunction]
#[pyo3(
    signature = (extended_code, message=String::new()),
    text_signature = "(extended_code, message='')"
)]
pub fn error_from_code(
    py: Python<'_>,
    extended_code: i32,
    message: String,
) -> PyResult<Bound<'_, PyAny>> {
    let message = if message.is_empty() {
        codes::name(extended_code).unwrap_or_default().to_owned()
    } else {
        message
    };
    let class = class_for(py, classify::classify_code(extended_code));
    class.call1((message, extended_code))
}

/// For the coverage test: `(label, exception class)` for every class the
/// classifier can return.
pub fn classes(py: Python<'_>) -> Vec<(&'static str, Bound<'_, PyType>)> {
    ErrorClass::ALL
        .iter()
        .map(|&c| (c.as_str(), class_for(py, c)))
        .collect()
}

/// For the coverage test: `(variant name, exception)` for one sample of every
/// [`Error`] variant, converted by the same `From<Error> for PyErr`.
pub fn variants(py: Python<'_>) -> Vec<(&'static str, Py<PyBaseException>)> {
    samples()
        .into_iter()
        .map(|e| (variant_name(&e), PyErr::from(e).into_value(py)))
        .collect()
}

/// The variant's name. No wildcard: a new variant fails to compile until it
/// is named here, and the coverage test then asks for a sample of it.
fn variant_name(err: &Error) -> &'static str {
    match err {
        Error::Sqlite { .. } => "Sqlite",
        Error::InvalidInput { .. } => "InvalidInput",
        Error::Io { .. } => "Io",
        Error::Closed => "Closed",
        Error::Forked { .. } => "Forked",
        Error::SchemaTooNew { .. } => "SchemaTooNew",
        Error::NotMemtree { .. } => "NotMemtree",
        Error::Quarantined { .. } => "Quarantined",
        Error::CircuitOpen { .. } => "CircuitOpen",
        Error::LeaseLost {
            cancelled: true, ..
        } => "LeaseLost(cancelled)",
        Error::LeaseLost { .. } => "LeaseLost",
        Error::PathRefused { .. } => "PathRefused",
        Error::StaleBuffer { .. } => "StaleBuffer",
    }
}

/// One error of every variant, with a code of a known class where it has one.
fn samples() -> Vec<Error> {
    let path = Path::new("/nonexistent/memtree-sample.db");
    let sqlite = |code: i32| {
        // Plain Error::sqlite: a sample with a fixed code, of no connection.
        Error::sqlite(
            "sample",
            path,
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        )
    };
    vec![
        sqlite(codes::BUSY),
        Error::invalid("sample", "rejected"),
        Error::io(
            "sample",
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ),
        Error::Closed,
        Error::Forked {
            path: path.to_owned(),
        },
        Error::SchemaTooNew {
            path: path.to_owned(),
            found: 99,
            supported: 1,
        },
        Error::NotMemtree {
            path: path.to_owned(),
            reason: "sample".into(),
        },
        Error::Quarantined {
            path: path.to_owned(),
            quarantined: path.with_extension("corrupt"),
            source: Box::new(sqlite(codes::CORRUPT)),
        },
        Error::CircuitOpen {
            path: path.to_owned(),
            retry_in: std::time::Duration::from_secs(1),
            last_code: Some(codes::IOERR_SHMOPEN),
        },
        Error::LeaseLost {
            job_id: "sample".into(),
            cancelled: false,
        },
        Error::LeaseLost {
            job_id: "sample".into(),
            cancelled: true,
        },
        Error::PathRefused {
            path: path.to_owned(),
            code: codes::NOTADB,
            reason: "sample".into(),
        },
        Error::StaleBuffer {
            tree_id: "sample".into(),
            level: 0,
            expected: "1-0".into(),
            found: "2-0".into(),
        },
    ]
}
