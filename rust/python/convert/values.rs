//! The core's structured values as Python objects: source kinds, raw refs
//! and source infos.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::args::{int64, text, type_name};
use super::time::from_ms;
use crate::chunks::record::SourceKind;
use crate::python::imports;

/// `memtree.SourceKind(kind)`, the Python enum member for a kind.
pub fn source_kind_to_py(py: Python<'_>, kind: SourceKind) -> PyResult<Bound<'_, PyAny>> {
    imports::get(py)?
        .source_kind
        .bind(py)
        .call1((kind.as_str(),))
}

/// Raw refs for `set_chunk_raw_refs`: `None` (clear) or an iterable of
/// `memtree.RawRef` (not a bare `str`); each field is converted under its
/// own name (`refs[2].start`). Values are checked by the core
/// ([`crate::chunks::derived::RawRef::validate`]).
pub fn raw_refs(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<Vec<crate::RawRef>>> {
    if value.is_none() {
        return Ok(None);
    }
    if value.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected a sequence of RawRef, got a single str"
        )));
    }
    let py = value.py();
    let raw_ref = crate::python::imports::get(py)?.raw_ref.bind(py);
    let iter = value.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "{field}: expected a sequence of RawRef, got {}",
            type_name(value)
        ))
    })?;
    let mut out = Vec::new();
    for (i, item) in iter.enumerate() {
        let item = item?;
        let at = format!("{field}[{i}]");
        if !item.is_instance(raw_ref)? {
            return Err(PyTypeError::new_err(format!(
                "{at}: expected RawRef, got {}",
                type_name(&item)
            )));
        }
        let end = item.getattr("end")?;
        out.push(crate::RawRef {
            path: text(&item.getattr("path")?, &format!("{at}.path"))?,
            start: int64(&item.getattr("start")?, &format!("{at}.start"))?,
            end: if end.is_none() {
                None
            } else {
                Some(int64(&end, &format!("{at}.end"))?)
            },
        });
    }
    Ok(Some(out))
}

/// `memtree.RawRef(path, start, end)` for a stored ref.
pub fn raw_ref_to_py<'py>(py: Python<'py>, r: &crate::RawRef) -> PyResult<Bound<'py, PyAny>> {
    crate::python::imports::get(py)?
        .raw_ref
        .bind(py)
        .call1((r.path.as_str(), r.start, r.end))
}

/// `memtree.SourceInfo` for one row of `list_sources`.
pub fn source_info_to_py<'py>(
    py: Python<'py>,
    s: &crate::SourceInfo,
) -> PyResult<Bound<'py, PyAny>> {
    crate::python::imports::get(py)?
        .source_info
        .bind(py)
        .call1((
            source_kind_to_py(py, s.source_kind)?,
            s.source_id.as_str(),
            s.chunk_count,
            s.token_total,
            from_ms(py, s.oldest_ms)?,
            from_ms(py, s.newest_ms)?,
        ))
}
