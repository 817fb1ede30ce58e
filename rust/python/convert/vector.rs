//! Float vectors: an embedding given as a buffer (read in one piece) or as
//! any iterable of floats.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::args::type_name;

/// An optional embedding: a non-empty sequence of floats, stored as `f32`.
pub fn embedding(embedding: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<f32>>> {
    let Some(values) = embedding else {
        return Ok(None);
    };
    let iter = values
        .try_iter()
        .map_err(|_| PyTypeError::new_err("embedding: expected a sequence of floats"))?;
    let mut out = Vec::new();
    for (i, item) in iter.enumerate() {
        let x: f64 = item?
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("embedding[{i}]: expected a float")))?;
        // Values beyond f32's range become ±inf and are rejected as non-finite.
        out.push(x as f32);
    }
    if out.is_empty() {
        return Err(PyValueError::new_err(
            "embedding: must not be empty (use None for no embedding)",
        ));
    }
    Ok(Some(out))
}

/// A float vector for `set_chunk_embedding`: `None` (clear), an object with
/// the buffer protocol holding 1-D float32 or float64 values (`array('f')`,
/// a `memoryview`, a numpy array), or any other iterable of floats.
///
/// A buffer is read as raw bytes in one piece (`memoryview.tobytes()`: the
/// stable ABI for Python 3.9 has no direct buffer access), never one Python
/// float per element. Emptiness and finiteness are the core's check
/// ([`crate::chunks::record::validate_embedding`]), which runs before any write.
pub fn vector(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<Vec<f32>>> {
    if value.is_none() {
        return Ok(None);
    }
    if value.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected a sequence of floats or a float buffer, got str"
        )));
    }
    if let Ok(view) = pyo3::types::PyMemoryView::from(value) {
        return buffer_floats(&view, field).map(Some);
    }
    let iter = value.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "{field}: expected a sequence of floats or a float buffer, got {}",
            type_name(value)
        ))
    })?;
    let mut out = Vec::new();
    for (i, item) in iter.enumerate() {
        let item = item?;
        let x: f64 = item.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "{field}[{i}]: expected a float, got {}",
                type_name(&item)
            ))
        })?;
        // Beyond f32's range becomes ±inf, which the core rejects.
        out.push(x as f32);
    }
    Ok(Some(out))
}

/// The values of a 1-D buffer of `f` (float32) or `d` (float64) items in
/// any byte order the struct-module format names.
fn buffer_floats(view: &Bound<'_, pyo3::types::PyMemoryView>, field: &str) -> PyResult<Vec<f32>> {
    let format: String = view.getattr("format")?.extract()?;
    let ndim: i64 = view.getattr("ndim")?.extract()?;
    let (order, code) = match format.as_bytes() {
        [code] => (b'@', *code),
        [order, code] => (*order, *code),
        _ => (0, 0),
    };
    let little = match order {
        b'<' => true,
        b'>' | b'!' => false,
        b'@' | b'=' => cfg!(target_endian = "little"),
        _ => {
            return Err(PyTypeError::new_err(format!(
                "{field}: expected a buffer of float32 or float64, got format {format:?}"
            )))
        }
    };
    if code != b'f' && code != b'd' {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected a buffer of float32 or float64, got format {format:?}"
        )));
    }
    if ndim != 1 {
        return Err(PyValueError::new_err(format!(
            "{field}: expected a 1-dimensional buffer, got {ndim} dimensions"
        )));
    }
    let raw = view.call_method0("tobytes")?;
    let bytes = raw.cast::<pyo3::types::PyBytes>()?.as_bytes();
    Ok(if code == b'f' {
        bytes
            .chunks_exact(4)
            .map(|b| {
                let b = [b[0], b[1], b[2], b[3]];
                if little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                }
            })
            .collect()
    } else {
        bytes
            .chunks_exact(8)
            .map(|b| {
                let b = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
                // Beyond f32's range becomes ±inf, which the core rejects.
                (if little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                }) as f32
            })
            .collect()
    })
}
