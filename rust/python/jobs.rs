//! `memtree.Jobs`, `memtree.Job` and `memtree.JobBatch`: argument conversion
//! and GIL release around the core job queue (`crate::jobs`).
//!
//! Payloads are encoded to JSON text once, in Rust, with the GIL held and
//! before any database work (`super::payload`): what `json.dumps` encodes
//! works, anything else is a `TypeError` or `ValueError` with nothing
//! written, and the core does not parse the text again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use super::chunk::PyChunk;
use super::convert::{self, arg};
use super::imports;
use super::payload;
use super::store::PyStore;
use crate::jobs::{self, Job, JobStatus, NewJob, DEFAULT_LEASE, DEFAULT_MAX_ATTEMPTS};

// The Python signatures spell the default out (`max_attempts=5`) so that
// stubtest sees a literal; keep them in step with the core.
const _: () = assert!(DEFAULT_MAX_ATTEMPTS == 5);
use crate::store::Store;
use crate::SourceKind;

/// `(id, token)` of a claimed `Job`; a job without a token can hold no lease.
fn lease_of(job: &Bound<'_, PyAny>, field: &str) -> PyResult<(String, String)> {
    let job = job.cast::<PyJob>().map_err(|_| {
        PyTypeError::new_err(format!("{field}: expected a memtree.Job from claim_next"))
    })?;
    let inner = &job.get().inner;
    Ok((
        inner.id.clone(),
        inner.lease_token.clone().unwrap_or_default(),
    ))
}

fn leases_of(jobs: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    jobs.try_iter()
        .map_err(|_| PyTypeError::new_err("jobs: expected an iterable of Job"))?
        .enumerate()
        .map(|(i, j)| lease_of(&j?, &format!("jobs[{i}]")))
        .collect()
}

/// A `NewJob` from enqueue's arguments (the core validates it; a batch
/// validates early so its errors surface at `enqueue`, not at `commit`).
fn new_job(
    kind: String,
    payload: &Bound<'_, PyAny>,
    dedupe_key: Option<String>,
    available_at: Option<&Bound<'_, PyAny>>,
    max_attempts: i64,
) -> PyResult<NewJob> {
    let payload_json = payload::to_json(payload, "payload")?;
    let mut job = NewJob::encoded(kind, payload_json);
    job.dedupe_key = dedupe_key;
    job.available_at_ms = convert::opt_to_ms(available_at, "available_at")?;
    job.max_attempts = max_attempts;
    Ok(job)
}

/// One job, as read or claimed (see the stub for documentation).
#[pyclass(frozen, eq, name = "Job", module = "memtree")]
#[derive(Debug, Clone, PartialEq)]
pub struct PyJob {
    inner: Job,
}

#[pymethods]
impl PyJob {
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    #[getter]
    fn kind(&self) -> &str {
        &self.inner.kind
    }
    /// A fresh copy of the payload on every access (the job stays immutable).
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        imports::get(py)?
            .json_loads
            .bind(py)
            .call1((&self.inner.payload_json,))
    }
    #[getter]
    fn payload_json(&self) -> &str {
        &self.inner.payload_json
    }
    #[getter]
    fn dedupe_key(&self) -> Option<&str> {
        self.inner.dedupe_key.as_deref()
    }
    #[getter]
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py_status(py, self.inner.status)
    }
    #[getter]
    fn attempts(&self) -> i64 {
        self.inner.attempts
    }
    #[getter]
    fn max_attempts(&self) -> i64 {
        self.inner.max_attempts
    }
    #[getter]
    fn available_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_ms(py, self.inner.available_at_ms)
    }
    #[getter]
    fn locked_until<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        convert::opt_from_ms(py, self.inner.locked_until_ms)
    }
    #[getter]
    fn last_error(&self) -> Option<&str> {
        self.inner.last_error.as_deref()
    }
    #[getter]
    fn created_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_ms(py, self.inner.created_at_ms)
    }
    #[getter]
    fn started_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        convert::opt_from_ms(py, self.inner.started_at_ms)
    }
    #[getter]
    fn completed_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        convert::opt_from_ms(py, self.inner.completed_at_ms)
    }
    #[getter]
    fn lease_token(&self) -> Option<&str> {
        self.inner.lease_token.as_deref()
    }

    fn __repr__(&self) -> String {
        let j = &self.inner;
        format!(
            "Job(id={:?}, kind={:?}, status={:?}, attempts={}/{}, dedupe_key={:?})",
            j.id,
            j.kind,
            j.status.as_str(),
            j.attempts,
            j.max_attempts,
            j.dedupe_key
        )
    }
}

fn to_py_jobs(py: Python<'_>, jobs: Vec<Job>) -> PyResult<Vec<Py<PyJob>>> {
    jobs.into_iter()
        .map(|inner| Py::new(py, PyJob { inner }))
        .collect()
}

/// `status` as a `memtree.JobStatus` member.
fn py_status(py: Python<'_>, status: JobStatus) -> PyResult<Bound<'_, PyAny>> {
    imports::get(py)?
        .job_status
        .bind(py)
        .call1((status.as_str(),))
}

/// A `{kind: priority}` mapping (None: no priorities) as pairs; a kind
/// that is not a str or a priority that is not an int (bool included) is a
/// `TypeError` naming `priorities`. Values are checked by the core.
fn priorities_of(priorities: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, i64)>> {
    let Some(mapping) = priorities.filter(|p| !p.is_none()) else {
        return Ok(Vec::new());
    };
    let type_error =
        || PyTypeError::new_err("priorities must be a mapping of str kind to int priority");
    let items = mapping.call_method0("items").map_err(|_| type_error())?;
    let mut out = Vec::new();
    for item in items.try_iter()? {
        let (kind, priority): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        if priority.is_instance_of::<pyo3::types::PyBool>()
            || !priority.is_instance_of::<pyo3::types::PyInt>()
        {
            return Err(type_error());
        }
        let kind: String = kind.extract().map_err(|_| type_error())?;
        let priority: i64 = priority
            .extract()
            .map_err(|_| PyValueError::new_err("priorities: a priority is past 64 bits"))?;
        out.push((kind, priority));
    }
    Ok(out)
}

/// The job queue of one store (see the stub for documentation).
#[pyclass(frozen, name = "Jobs", module = "memtree")]
pub struct PyJobs {
    store: Py<PyStore>,
}

impl PyJobs {
    /// The queue of `store`.
    pub fn new(store: &Bound<'_, PyStore>) -> Self {
        PyJobs {
            store: store.clone().unbind(),
        }
    }

    fn core(&self) -> &Store {
        &self.store.get().inner
    }
}

#[pymethods]
impl PyJobs {
    #[pyo3(signature = (kind, payload, dedupe_key=None, available_at=None, max_attempts=5))]
    fn enqueue(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::kind)] kind: String,
        payload: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::opt_dedupe_key)] dedupe_key: Option<String>,
        available_at: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::max_attempts)] max_attempts: i64,
    ) -> PyResult<Option<String>> {
        let job = new_job(kind, payload, dedupe_key, available_at, max_attempts)?;
        Ok(py.detach(|| self.core().jobs().enqueue(&job))?)
    }

    fn batch(&self, py: Python<'_>) -> PyJobBatch {
        PyJobBatch {
            store: self.store.clone_ref(py),
            state: Mutex::new(BatchState::Open {
                gates: Vec::new(),
                chunks: Vec::new(),
                jobs: Vec::new(),
            }),
        }
    }

    #[pyo3(signature = (lease=None, kinds=None, priorities=None))]
    fn claim_next(
        &self,
        py: Python<'_>,
        lease: Option<&Bound<'_, PyAny>>,
        kinds: Option<&Bound<'_, PyAny>>,
        priorities: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<PyJob>> {
        let lease = convert::opt_positive_duration(lease, "lease", DEFAULT_LEASE)?;
        let kinds = kinds.map(|k| convert::strs(k, "kinds")).transpose()?;
        let priorities = priorities_of(priorities)?;
        let jobs = py.detach(|| {
            self.core()
                .jobs()
                .claim_prioritized(1, lease, kinds.as_deref(), &priorities)
        })?;
        Ok(jobs.into_iter().next().map(|inner| PyJob { inner }))
    }

    #[pyo3(signature = (limit, lease=None, kinds=None, priorities=None))]
    fn claim_many(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::limit)] limit: i64,
        lease: Option<&Bound<'_, PyAny>>,
        kinds: Option<&Bound<'_, PyAny>>,
        priorities: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<PyJob>>> {
        let lease = convert::opt_positive_duration(lease, "lease", DEFAULT_LEASE)?;
        let kinds = kinds.map(|k| convert::strs(k, "kinds")).transpose()?;
        let priorities = priorities_of(priorities)?;
        let jobs = py.detach(|| {
            self.core()
                .jobs()
                .claim_prioritized(limit, lease, kinds.as_deref(), &priorities)
        })?;
        to_py_jobs(py, jobs)
    }

    fn cancel(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::job_id)] job_id: String,
    ) -> PyResult<bool> {
        Ok(py.detach(|| self.core().jobs().cancel(&job_id))?)
    }

    fn mark_done(&self, py: Python<'_>, job: &Bound<'_, PyAny>) -> PyResult<()> {
        let (id, token) = lease_of(job, "job")?;
        Ok(py.detach(|| self.core().jobs().mark_done(&id, &token))?)
    }

    fn mark_done_many(&self, py: Python<'_>, jobs: &Bound<'_, PyAny>) -> PyResult<()> {
        let leases = leases_of(jobs)?;
        Ok(py.detach(|| self.core().jobs().mark_done_many(&leases))?)
    }

    fn mark_failed<'py>(
        &self,
        py: Python<'py>,
        job: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::error)] error: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (id, token) = lease_of(job, "job")?;
        let status = py.detach(|| self.core().jobs().mark_failed(&id, &token, &error))?;
        py_status(py, status)
    }

    #[pyo3(signature = (job, lease=None, kinds=None, priorities=None))]
    fn mark_done_and_claim_next(
        &self,
        py: Python<'_>,
        job: &Bound<'_, PyAny>,
        lease: Option<&Bound<'_, PyAny>>,
        kinds: Option<&Bound<'_, PyAny>>,
        priorities: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<PyJob>> {
        let (id, token) = lease_of(job, "job")?;
        let lease = convert::opt_positive_duration(lease, "lease", DEFAULT_LEASE)?;
        let kinds = kinds.map(|k| convert::strs(k, "kinds")).transpose()?;
        let priorities = priorities_of(priorities)?;
        let next = py.detach(|| {
            self.core().jobs().mark_done_and_claim_next(
                &id,
                &token,
                lease,
                kinds.as_deref(),
                &priorities,
            )
        })?;
        Ok(next.map(|inner| PyJob { inner }))
    }

    #[pyo3(signature = (job, error, lease=None, kinds=None, priorities=None))]
    fn mark_failed_and_claim_next<'py>(
        &self,
        py: Python<'py>,
        job: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::error)] error: String,
        lease: Option<&Bound<'_, PyAny>>,
        kinds: Option<&Bound<'_, PyAny>>,
        priorities: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, Option<PyJob>)> {
        let (id, token) = lease_of(job, "job")?;
        let lease = convert::opt_positive_duration(lease, "lease", DEFAULT_LEASE)?;
        let kinds = kinds.map(|k| convert::strs(k, "kinds")).transpose()?;
        let priorities = priorities_of(priorities)?;
        let (status, next) = py.detach(|| {
            self.core().jobs().mark_failed_and_claim_next(
                &id,
                &token,
                &error,
                lease,
                kinds.as_deref(),
                &priorities,
            )
        })?;
        Ok((py_status(py, status)?, next.map(|inner| PyJob { inner })))
    }

    #[pyo3(
        signature = (job, until, reason=String::new()),
        text_signature = "(self, /, job, until, reason='')"
    )]
    fn defer(
        &self,
        py: Python<'_>,
        job: &Bound<'_, PyAny>,
        until: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::reason)] reason: String,
    ) -> PyResult<()> {
        let (id, token) = lease_of(job, "job")?;
        let until = convert::datetime_or_delay_ms(until, "until")?;
        Ok(py.detach(|| self.core().jobs().defer(&id, &token, until, &reason))?)
    }

    #[pyo3(signature = (job, lease=None))]
    fn heartbeat<'py>(
        &self,
        py: Python<'py>,
        job: &Bound<'py, PyAny>,
        lease: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (id, token) = lease_of(job, "job")?;
        let lease = convert::opt_positive_duration(lease, "lease", DEFAULT_LEASE)?;
        let until = py.detach(|| self.core().jobs().heartbeat(&id, &token, lease))?;
        convert::from_ms(py, until)
    }

    fn release(&self, py: Python<'_>, jobs: &Bound<'_, PyAny>) -> PyResult<usize> {
        let leases = leases_of(jobs)?;
        Ok(py.detach(|| self.core().jobs().release(&leases))?)
    }

    fn release_running_locks(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(py.detach(|| self.core().jobs().release_running_locks())?)
    }

    fn recover_stale_locks(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(py.detach(|| self.core().jobs().recover_stale_locks())?)
    }

    fn retry(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::job_id)] job_id: String,
    ) -> PyResult<bool> {
        Ok(py.detach(|| self.core().jobs().retry(&job_id))?)
    }

    fn get(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<PyJob>> {
        let job = py.detach(|| self.core().jobs().get(&id))?;
        Ok(job.map(|inner| PyJob { inner }))
    }

    #[pyo3(signature = (*, status=None, kind=None, limit=100))]
    fn list(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::opt_status)] status: Option<String>,
        #[pyo3(from_py_with = arg::opt_kind)] kind: Option<String>,
        #[pyo3(from_py_with = arg::limit)] limit: i64,
    ) -> PyResult<Vec<Py<PyJob>>> {
        let status = status.map(|s| s.parse::<JobStatus>()).transpose()?;
        let jobs = py.detach(|| self.core().jobs().list(status, kind.as_deref(), limit))?;
        to_py_jobs(py, jobs)
    }

    /// `store.scheduler.schedule` (see `memtree.Scheduler`).
    #[pyo3(signature = (kind, every, payload=None, key=None, now=None))]
    fn schedule(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::kind)] kind: String,
        every: &Bound<'_, PyAny>,
        payload: Option<&Bound<'_, PyAny>>,
        key: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<String>> {
        super::scheduler::schedule(self.core(), py, kind, every, payload, key, now)
    }

    fn counts(&self, py: Python<'_>) -> PyResult<HashMap<&'static str, i64>> {
        let counts = py.detach(|| self.core().jobs().counts())?;
        Ok(counts.into_iter().map(|(s, n)| (s.as_str(), n)).collect())
    }

    fn __repr__(&self) -> String {
        format!("Jobs({:?})", self.core().path().display().to_string())
    }
}

/// Where a batch is: buffering, then committed with its ids, or closed
/// (discarded, committing or failed) for good.
enum BatchState {
    /// Buffering; the chunks are the caller's own (frozen) objects, not copies.
    Open {
        gates: Vec<(SourceKind, String)>,
        chunks: Vec<Py<PyChunk>>,
        jobs: Vec<NewJob>,
    },
    /// Committed; one id (or `None` for a dedupe collision or a lost claim)
    /// per job, and whether the claim won (`None`: no `claim_source`).
    Committed(Vec<Option<String>>, Option<bool>),
    /// Discarded, being committed, or failed to commit.
    Closed,
}

const ALREADY_DONE: &str = "the batch was already committed or discarded";

/// Chunk writes and enqueues buffered in Python, committed by ONE core call
/// (one transaction) at `commit()` / the end of the `with` block; no lock is
/// held while Python code runs (see the stub for documentation).
#[pyclass(frozen, name = "JobBatch", module = "memtree")]
pub struct PyJobBatch {
    store: Py<PyStore>,
    state: Mutex<BatchState>,
}

impl PyJobBatch {
    fn state(&self) -> std::sync::MutexGuard<'_, BatchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_open<T>(
        &self,
        f: impl FnOnce(&mut Vec<Py<PyChunk>>, &mut Vec<NewJob>) -> T,
    ) -> PyResult<T> {
        match &mut *self.state() {
            BatchState::Open { chunks, jobs, .. } => Ok(f(chunks, jobs)),
            _ => Err(PyRuntimeError::new_err(ALREADY_DONE)),
        }
    }
}

#[pymethods]
impl PyJobBatch {
    fn upsert_chunks(&self, chunks: &Bound<'_, PyAny>) -> PyResult<usize> {
        let chunks = PyChunk::extract_all(chunks)?;
        let n = chunks.len();
        // Chunks are frozen, so holding the objects is as safe as a copy.
        self.with_open(|pending, _| pending.extend(chunks))?;
        Ok(n)
    }

    #[pyo3(signature = (kind, payload, dedupe_key=None, available_at=None, max_attempts=5))]
    fn enqueue(
        &self,
        #[pyo3(from_py_with = arg::kind)] kind: String,
        payload: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::opt_dedupe_key)] dedupe_key: Option<String>,
        available_at: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::max_attempts)] max_attempts: i64,
    ) -> PyResult<usize> {
        let job = new_job(kind, payload, dedupe_key, available_at, max_attempts)?;
        job.validate("")?;
        self.with_open(|_, jobs| {
            jobs.push(job);
            jobs.len() - 1
        })
    }

    fn claim_source(
        &self,
        source_kind: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::source_id)] source_id: String,
    ) -> PyResult<()> {
        let kind = convert::source_kind(source_kind, "source_kind")?;
        if source_id.is_empty() {
            return Err(PyValueError::new_err("source_id: must not be empty"));
        }
        match &mut *self.state() {
            BatchState::Open { gates, .. } => {
                gates.push((kind, source_id));
                Ok(())
            }
            _ => Err(PyRuntimeError::new_err(ALREADY_DONE)),
        }
    }

    fn commit(&self, py: Python<'_>) -> PyResult<Vec<Option<String>>> {
        // Taken out first: a batch commits (or fails) once, never twice.
        let taken = {
            let mut state = self.state();
            match std::mem::replace(&mut *state, BatchState::Closed) {
                BatchState::Open {
                    gates,
                    chunks,
                    jobs,
                } => (gates, chunks, jobs),
                other => {
                    *state = other;
                    return Err(PyRuntimeError::new_err(ALREADY_DONE));
                }
            }
        };
        let (gates, chunks, jobs) = taken;
        let store = &self.store.get().inner;
        // References into the frozen chunks; no GIL is needed to read them.
        let refs = PyChunk::refs(&chunks);
        let done = py.detach(|| store.jobs().ingest(&gates, &refs, &jobs))?;
        let claimed = (!gates.is_empty()).then_some(done.claimed);
        *self.state() = BatchState::Committed(done.job_ids.clone(), claimed);
        Ok(done.job_ids)
    }

    fn discard(&self) {
        let mut state = self.state();
        if matches!(*state, BatchState::Open { .. }) {
            *state = BatchState::Closed;
        }
    }

    #[getter]
    fn job_ids(&self) -> PyResult<Vec<Option<String>>> {
        match &*self.state() {
            BatchState::Committed(ids, _) => Ok(ids.clone()),
            _ => Err(PyRuntimeError::new_err("the batch is not committed")),
        }
    }

    /// After the commit: whether the batch's `claim_source` won (True: the
    /// gate, chunks and jobs were written; False: another ingest had the
    /// source and nothing was written); None when it claimed nothing.
    #[getter]
    fn claimed(&self) -> PyResult<Option<bool>> {
        match &*self.state() {
            BatchState::Committed(_, claimed) => Ok(*claimed),
            _ => Err(PyRuntimeError::new_err("the batch is not committed")),
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (exc_type, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if exc_type.is_some_and(|t| !t.is_none()) {
            self.discard();
        } else {
            self.commit(py)?;
        }
        Ok(())
    }
}

/// The current generation of the process-wide enqueue signal.
#[pyfunction]
fn job_signal() -> u64 {
    jobs::signal_generation()
}

/// Waits (GIL released) until the signal moves past `seen` or `timeout`
/// seconds pass; returns the generation then.
#[pyfunction]
fn wait_job_signal(py: Python<'_>, seen: u64, timeout: f64) -> u64 {
    // NaN waits not at all; anything past a day waits a day.
    let seconds = if timeout.is_nan() {
        0.0
    } else {
        timeout.clamp(0.0, 86_400.0)
    };
    let timeout = Duration::from_secs_f64(seconds);
    py.detach(|| jobs::wait_for_signal(seen, timeout))
}

/// Bumps the signal, waking every idle worker of this process.
#[pyfunction]
fn notify_job_signal() {
    jobs::notify_enqueued();
}

/// Adds the job classes and functions to the native module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyJob>()?;
    m.add_class::<PyJobs>()?;
    m.add_class::<PyJobBatch>()?;
    m.add_function(wrap_pyfunction!(job_signal, m)?)?;
    m.add_function(wrap_pyfunction!(wait_job_signal, m)?)?;
    m.add_function(wrap_pyfunction!(notify_job_signal, m)?)?;
    Ok(())
}
