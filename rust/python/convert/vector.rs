//! Float vectors between Python and the core: 1-D and 2-D float buffers
//! read as raw memory, sequences of floats, `array.array("f")` out, and
//! `memtree.Embeddings` (many vectors as one block of bytes).
//!
//! A buffer (numpy array, `array.array`, `memoryview`, ctypes array) is read
//! in one piece with `memoryview.tobytes()` (the stable ABI for Python 3.9
//! has no direct buffer access), never one Python float per element.
//! `bytes` and `bytearray` are refused: their format is unsigned bytes, so
//! reading them as numbers would store one float per byte.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString, PyTuple};

use super::args::type_name;
use crate::chunks::derived::EmbeddingRows;
use crate::db::packed::Floats;

/// The shape and byte order of a float buffer.
struct FloatBuffer {
    /// `f` (float32) or `d` (float64).
    code: u8,
    little: bool,
    shape: Vec<usize>,
    bytes: Py<PyBytes>,
}

/// A `memoryview` of `value` when it has the buffer protocol.
fn memoryview<'py>(value: &Bound<'py, PyAny>) -> Option<Bound<'py, PyMemoryView>> {
    PyMemoryView::from(value).ok()
}

/// Refuses `str` (iterable, never numbers) and `bytes`/`bytearray` (a
/// buffer of unsigned bytes), with the way to pass raw float32 bytes.
fn refuse_text_and_bytes(value: &Bound<'_, PyAny>, field: &str) -> PyResult<()> {
    if value.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected a sequence of floats or a float buffer, got str"
        )));
    }
    if value.is_instance_of::<PyBytes>() || value.is_instance_of::<PyByteArray>() {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected a buffer of float32 or float64, got {} (raw float32 \
             bytes are read with memoryview(b).cast(\"f\"))",
            type_name(value)
        )));
    }
    Ok(())
}

/// The format, shape and bytes of a float32/float64 buffer.
fn float_buffer(view: &Bound<'_, PyMemoryView>, field: &str) -> PyResult<FloatBuffer> {
    let format: String = view.getattr("format")?.extract()?;
    let (order, code) = match format.as_bytes() {
        [code] => (b'@', *code),
        [order, code] => (*order, *code),
        _ => (0, 0),
    };
    let little = match order {
        b'<' => Some(true),
        b'>' | b'!' => Some(false),
        b'@' | b'=' => Some(cfg!(target_endian = "little")),
        _ => None,
    };
    let Some(little) = little.filter(|_| code == b'f' || code == b'd') else {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected a buffer of float32 or float64, got format {format:?}"
        )));
    };
    let shape: Vec<usize> = view.getattr("shape")?.extract()?;
    let bytes = view
        .call_method0("tobytes")?
        .cast_into::<PyBytes>()?
        .unbind();
    Ok(FloatBuffer {
        code,
        little,
        shape,
        bytes,
    })
}

/// The values of a buffer's bytes as `f32` (float64 rounded; beyond
/// float32's range it becomes ±inf, which the core refuses).
fn buffer_values(buffer: &FloatBuffer, py: Python<'_>) -> Vec<f32> {
    let bytes = buffer.bytes.bind(py).as_bytes();
    let little = buffer.little;
    if buffer.code == b'f' {
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
                (if little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                }) as f32
            })
            .collect()
    }
}

/// One vector: a 1-D float buffer or any iterable of floats. Emptiness and
/// finiteness are the core's check ([`crate::chunks::record::validate_embedding`]).
pub fn floats(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Vec<f32>> {
    refuse_text_and_bytes(value, field)?;
    if let Some(view) = memoryview(value) {
        let buffer = float_buffer(&view, field)?;
        if buffer.shape.len() != 1 {
            return Err(PyValueError::new_err(format!(
                "{field}: expected a 1-dimensional buffer, got {} dimensions",
                buffer.shape.len()
            )));
        }
        return Ok(buffer_values(&buffer, value.py()));
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
        out.push(x as f32);
    }
    Ok(out)
}

/// `None` or one vector ([`floats`]).
pub fn opt_floats(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<Vec<f32>>> {
    if value.is_none() {
        Ok(None)
    } else {
        floats(value, field).map(Some)
    }
}

/// Many vectors: a 2-D float buffer (`(n, d)`, one row per vector) or a
/// sequence whose items are `None` or one vector each. The values of every
/// row are in one `Vec`; each row is its range there (`None`: clear).
pub struct Matrix {
    values: Vec<f32>,
    rows: Vec<Option<std::ops::Range<usize>>>,
}

impl Matrix {
    /// Reads `value` (named `field` in errors: `matrix[3]`).
    pub fn extract(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Matrix> {
        refuse_text_and_bytes(value, field)?;
        if let Some(view) = memoryview(value) {
            let buffer = float_buffer(&view, field)?;
            let &[n, d] = buffer.shape.as_slice() else {
                return Err(PyValueError::new_err(format!(
                    "{field}: expected a 2-dimensional buffer (one row per id), got {} dimensions",
                    buffer.shape.len()
                )));
            };
            let values = buffer_values(&buffer, value.py());
            return Ok(Matrix {
                values,
                rows: (0..n).map(|i| Some(i * d..(i + 1) * d)).collect(),
            });
        }
        let iter = value.try_iter().map_err(|_| {
            PyTypeError::new_err(format!(
                "{field}: expected a 2-dimensional float buffer or a sequence of vectors, got {}",
                type_name(value)
            ))
        })?;
        let mut matrix = Matrix {
            values: Vec::new(),
            rows: Vec::new(),
        };
        for (i, item) in iter.enumerate() {
            let item = item?;
            let row = opt_floats(&item, &format!("{field}[{i}]"))?.map(|v| {
                let start = matrix.values.len();
                matrix.values.extend(v);
                start..matrix.values.len()
            });
            matrix.rows.push(row);
        }
        Ok(matrix)
    }

    /// Each row as the core takes it.
    pub fn rows(&self) -> Vec<Option<&[f32]>> {
        self.rows
            .iter()
            .map(|r| r.clone().map(|r| &self.values[r]))
            .collect()
    }
}

/// A stored embedding as `Chunk.embedding` and `Summary.embedding` return
/// it: a tuple of floats, or None.
pub fn embedding_tuple<'py>(
    py: Python<'py>,
    values: Option<Floats<'_>>,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    values
        .map(|v| PyTuple::new(py, v.iter().map(f64::from)))
        .transpose()
}

static ARRAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `array.array("f", values)`: a buffer numpy takes without a copy.
pub fn float_array<'py>(py: Python<'py>, values: &[f32]) -> PyResult<Bound<'py, PyAny>> {
    let array = ARRAY.get_or_try_init(py, || {
        PyResult::Ok(py.import("array")?.getattr("array")?.unbind())
    })?;
    // array('f') holds native-endian float32, whatever the platform.
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
    array.bind(py).call1(("f", PyBytes::new(py, &bytes)))
}

/// Many chunks' embeddings as one block of bytes
/// (:meth:`Store.get_chunk_embeddings`).
#[pyclass(frozen, name = "Embeddings", module = "memtree")]
pub struct PyEmbeddings {
    ids: Vec<String>,
    dim: usize,
    data: Py<PyBytes>,
}

impl PyEmbeddings {
    /// Wraps the core's rows; the bytes are copied once, into `data`.
    pub fn new(py: Python<'_>, rows: EmbeddingRows) -> PyEmbeddings {
        PyEmbeddings {
            data: PyBytes::new(py, &rows.data).unbind(),
            ids: rows.ids,
            dim: rows.dim,
        }
    }
}

#[pymethods]
impl PyEmbeddings {
    /// The chunk ids, in the order asked (those with an embedding).
    #[getter]
    fn ids(&self) -> Vec<String> {
        self.ids.clone()
    }

    /// The dimension of every vector (0 when there are none).
    #[getter]
    fn dim(&self) -> usize {
        self.dim
    }

    /// ``len(ids) * dim`` little-endian float32 values, row-major.
    #[getter]
    fn data(&self, py: Python<'_>) -> Py<PyBytes> {
        self.data.clone_ref(py)
    }

    /// A read-only ``numpy`` array of shape ``(len(ids), dim)`` and dtype
    /// float32 over :attr:`data` (no copy; numpy is imported on this call).
    fn to_numpy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let numpy = py.import("numpy")?;
        numpy
            .call_method1("frombuffer", (self.data.bind(py), "<f4"))?
            .call_method1("reshape", ((self.ids.len(), self.dim),))
    }

    fn __len__(&self) -> usize {
        self.ids.len()
    }

    fn __repr__(&self) -> String {
        format!("Embeddings(n={}, dim={})", self.ids.len(), self.dim)
    }
}

/// An optional embedding for `Chunk(embedding=...)`: a 1-D float buffer or
/// a sequence of floats ([`floats`]), stored as `f32`.
pub fn embedding(embedding: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<f32>>> {
    embedding
        .map(|values| floats(values, "embedding"))
        .transpose()
}

/// A float vector for `set_chunk_embedding`: `None` (clear), a 1-D float32
/// or float64 buffer or any other iterable of floats
/// ([`floats`]). Emptiness and finiteness are the core's check
/// ([`crate::chunks::record::validate_embedding`]), which runs before any write.
pub fn vector(value: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<Vec<f32>>> {
    opt_floats(value, field)
}
