//! `memtree.JobPayload`: OpenHuman's typed job payloads, built and checked
//! by the core (`crate::job_kinds`), and `job_kinds()`, the core's list of
//! kinds that `memtree.JobKind` mirrors.

use pyo3::prelude::*;

use super::convert::{self, arg};
use super::imports;
use crate::job_kinds::{AppendTarget, JobKind, NodeRef, Payload};

fn node(kind: &str, id: String) -> PyResult<NodeRef> {
    match kind {
        "leaf" => Ok(NodeRef::Leaf(id)),
        "summary" => Ok(NodeRef::Summary(id)),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "node_kind: expected \"leaf\" or \"summary\", got {other:?}"
        ))),
    }
}

fn target(kind: &str, id: String) -> PyResult<AppendTarget> {
    match kind {
        "source" => Ok(AppendTarget::Source(id)),
        "topic" => Ok(AppendTarget::Topic(id)),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "target_kind: expected \"source\" or \"topic\", got {other:?}"
        ))),
    }
}

/// A `date` or `datetime`'s `isoformat()[:10]`, or a `YYYY-MM-DD` str.
pub(super) fn date_iso(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if value.is_instance_of::<pyo3::types::PyString>() {
        return convert::text(value, "date");
    }
    if value.hasattr("isoformat")? {
        let iso: String = value.call_method0("isoformat")?.extract()?;
        return Ok(iso.chars().take(10).collect());
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "date: expected a datetime.date or a YYYY-MM-DD str, got {}",
        convert::type_name(value)
    )))
}

/// One of OpenHuman's typed job payloads, built by the static methods
/// below: the payload JSON exactly as OpenHuman's serde writes it and the
/// dedupe key it derives. Enqueue it with
/// ``store.jobs.enqueue(p.kind, p.payload, dedupe_key=p.dedupe_key)``.
/// A bad field (an empty id, an unknown node or target kind, a level outside
/// 0..32, a date not ``YYYY-MM-DD``, a negative age) is a ``ValueError``.
#[pyclass(frozen, eq, name = "JobPayload", module = "memtree")]
#[derive(Debug, Clone, PartialEq)]
pub struct PyJobPayload {
    inner: Payload,
}

fn built(inner: Payload) -> PyResult<PyJobPayload> {
    inner.validate()?;
    Ok(PyJobPayload { inner })
}

#[pymethods]
impl PyJobPayload {
    /// ``extract_chunk``; dedupe key ``extract:<chunk_id>``.
    #[staticmethod]
    fn extract_chunk(#[pyo3(from_py_with = arg::chunk_id)] chunk_id: String) -> PyResult<Self> {
        built(Payload::ExtractChunk { chunk_id })
    }

    /// ``append_buffer`` of a chunk (``leaf``) or summary to a source
    /// tree (by source id) or a topic tree (by tree id); dedupe key
    /// ``append:<target_kind>:<target_id>:<node_kind>:<node_id>``.
    #[staticmethod]
    fn append_buffer(
        #[pyo3(from_py_with = arg::node_kind)] node_kind: String,
        #[pyo3(from_py_with = arg::node_id)] node_id: String,
        #[pyo3(from_py_with = arg::target_kind)] target_kind: String,
        #[pyo3(from_py_with = arg::target_id)] target_id: String,
    ) -> PyResult<Self> {
        built(Payload::AppendBuffer {
            node: node(&node_kind, node_id)?,
            target: target(&target_kind, target_id)?,
        })
    }

    /// ``seal`` of a tree's buffer at ``level``; dedupe key ``seal:<tree_id>:<level>``.
    #[staticmethod]
    #[pyo3(signature = (tree_id, level, force_now=None))]
    fn seal(
        #[pyo3(from_py_with = arg::tree_id)] tree_id: String,
        #[pyo3(from_py_with = arg::level)] level: i64,
        force_now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        built(Payload::Seal {
            tree_id,
            level,
            force_now_ms: convert::opt_time_or_ms(force_now, "force_now")?,
        })
    }

    /// ``topic_route`` of a node; dedupe key ``topic_route:<node_kind>:<node_id>``.
    #[staticmethod]
    fn topic_route(
        #[pyo3(from_py_with = arg::node_kind)] node_kind: String,
        #[pyo3(from_py_with = arg::node_id)] node_id: String,
    ) -> PyResult<Self> {
        built(Payload::TopicRoute {
            node: node(&node_kind, node_id)?,
        })
    }

    /// ``digest_daily`` of a day; dedupe key ``digest_daily:<YYYY-MM-DD>``.
    #[staticmethod]
    fn digest_daily(date: &Bound<'_, PyAny>) -> PyResult<Self> {
        built(Payload::DigestDaily {
            date_iso: date_iso(date)?,
        })
    }

    /// ``flush_stale`` (once a day); dedupe key ``flush_stale:<YYYY-MM-DD>``.
    #[staticmethod]
    #[pyo3(signature = (date, max_age_secs=None))]
    fn flush_stale(
        date: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::opt_max_age_secs)] max_age_secs: Option<i64>,
    ) -> PyResult<Self> {
        built(Payload::FlushStale {
            max_age_secs,
            date_iso: date_iso(date)?,
        })
    }

    /// The job kind.
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("memtree._types")?
            .getattr("JobKind")?
            .call1((self.inner.kind().as_str(),))
    }
    /// The payload as OpenHuman's serde writes it.
    #[getter]
    fn payload_json(&self) -> String {
        self.inner.payload_json()
    }
    /// The payload, parsed (a fresh dict on every access).
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        imports::get(py)?
            .json_loads
            .bind(py)
            .call1((self.inner.payload_json(),))
    }
    /// OpenHuman's dedupe key for the payload.
    #[getter]
    fn dedupe_key(&self) -> String {
        self.inner.dedupe_key()
    }
    fn __repr__(&self) -> String {
        format!(
            "JobPayload(kind={:?}, payload={}, dedupe_key={:?})",
            self.inner.kind().as_str(),
            self.inner.payload_json(),
            self.inner.dedupe_key()
        )
    }
}

/// ``(kind, is_llm_bound)`` of every job kind of the core, in OpenHuman's
/// order (:class:`memtree.JobKind` mirrors it).
#[pyfunction]
fn job_kinds() -> Vec<(&'static str, bool)> {
    JobKind::ALL
        .into_iter()
        .map(|k| (k.as_str(), k.is_llm_bound()))
        .collect()
}

/// Adds the class and the function to `m`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyJobPayload>()?;
    m.add_function(wrap_pyfunction!(job_kinds, m)?)
}
