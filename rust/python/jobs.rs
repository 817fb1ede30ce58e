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
use crate::db::store::Store;
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

/// One row of the job queue, as read or claimed; immutable.
///
/// A job returned by :meth:`Jobs.claim_next` carries the claim's
/// ``lease_token``; settling it (:meth:`Jobs.mark_done` and friends) only
/// works while that token is the job's current lease.
#[pyclass(frozen, eq, name = "Job", module = "memtree")]
#[derive(Debug, Clone, PartialEq)]
pub struct PyJob {
    inner: Job,
}

#[pymethods]
impl PyJob {
    /// ``job:<uuid v4>``.
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    /// What the job does; workers pick a handler by it.
    #[getter]
    fn kind(&self) -> &str {
        &self.inner.kind
    }
    /// The payload, decoded from JSON (a fresh copy on every access).
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        imports::get(py)?
            .json_loads
            .bind(py)
            .call1((&self.inner.payload_json,))
    }
    /// The payload as stored.
    #[getter]
    fn payload_json(&self) -> &str {
        &self.inner.payload_json
    }
    /// At most one ready or running job carries a given key.
    #[getter]
    fn dedupe_key(&self) -> Option<&str> {
        self.inner.dedupe_key.as_deref()
    }
    /// ``ready``, ``running``, ``done``, ``failed`` (dead letter) or
    /// ``cancelled``; :attr:`JobStatus.is_terminal` says whether a worker
    /// can still claim it.
    #[getter]
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py_status(py, self.inner.status)
    }
    /// Claims that counted (deferrals and graceful releases do not).
    #[getter]
    fn attempts(&self) -> i64 {
        self.inner.attempts
    }
    /// Attempts before the job is dead-lettered.
    #[getter]
    fn max_attempts(&self) -> i64 {
        self.inner.max_attempts
    }
    /// Not claimed before this time (UTC).
    #[getter]
    fn available_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_ms(py, self.inner.available_at_ms)
    }
    /// While running: when the lease expires (as of the read).
    #[getter]
    fn locked_until<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        convert::opt_from_ms(py, self.inner.locked_until_ms)
    }
    /// The last failure (with its causes), deferral reason or recovery note.
    #[getter]
    fn last_error(&self) -> Option<&str> {
        self.inner.last_error.as_deref()
    }
    /// When it was enqueued (UTC).
    #[getter]
    fn created_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_ms(py, self.inner.created_at_ms)
    }
    /// When it was last claimed (UTC); ``None`` before the first claim and
    /// after a deferral (as OpenHuman's ``mark_deferred`` clears it).
    #[getter]
    fn started_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        convert::opt_from_ms(py, self.inner.started_at_ms)
    }
    /// When it became ``done`` or ``failed`` (UTC).
    #[getter]
    fn completed_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        convert::opt_from_ms(py, self.inner.completed_at_ms)
    }
    /// The token of the claim this job was read under (running jobs only).
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

/// The job queue of a store (``store.jobs``): at-least-once, leased,
/// deduplicated; every call is one transaction with the GIL released.
///
/// Settles (:meth:`mark_done`, :meth:`mark_failed`, :meth:`defer`,
/// :meth:`heartbeat`) need the job's current lease token and raise
/// :class:`memtree.LeaseLostError`, changing nothing, when the lease was
/// recovered, re-claimed or already settled.
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
    /// Queues a job; returns its id, or None when a ready or running job
    /// has the same ``dedupe_key`` (nothing is written).
    ///
    /// ``TypeError``: ``payload`` is not JSON-serialisable, or another
    /// argument has the wrong type. ``ValueError``: an empty ``kind`` or
    /// ``dedupe_key``; a payload more than 127 containers deep, circular, or
    /// holding NaN, an infinity or a number beyond a float's range; ``max_attempts`` below
    /// 1 or past 64 bits; a naive or out-of-range ``available_at``.
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

    /// A buffer of chunk writes and enqueues committed in one transaction.
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

    /// Claims an available ready job (of ``kinds``) for ``lease`` (default
    /// 5 minutes), in one statement; None when there is none. The claim
    /// counts as an attempt. ``priorities`` (``{kind: priority}``, kinds not
    /// listed: 0): the highest priority first; oldest first within a
    /// priority (and across all kinds without ``priorities``). No claim
    /// sorts in a temp B-tree: each kind is an index SEARCH (a claim of
    /// any kind first finds the kinds with ready jobs; past 256 of them,
    /// the kinds without a priority are sorted together).
    ///
    /// ``TypeError``: ``lease`` is not a ``timedelta``, ``kinds`` not an
    /// iterable of str, ``priorities`` not a mapping of str to int.
    /// ``ValueError``: ``lease`` under 1 ms, or ending past
    /// 9999-12-31T23:59:59.999Z; an empty kind in ``priorities``; more than
    /// 256 kinds named by ``kinds`` and ``priorities``.
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

    /// Claims up to ``limit`` available ready jobs in one statement, in
    /// claim order (``limit`` clamped to 1..10000; past 64 bits a
    /// ``ValueError``; ``lease``, ``kinds`` and ``priorities`` as for
    /// :meth:`claim_next`).
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

    /// Deletes finished jobs (``statuses``, default ``("done", "failed",
    /// "cancelled")``) that finished ``older_than`` ago or earlier (a
    /// ``timedelta``) or at or before it (an aware ``datetime``); returns how
    /// many. Runs as many short transactions (each aims to hold the write
    /// lock about 20 ms), so concurrent enqueues and claims go on. A
    /// ``ready`` or ``running`` status is a ``ValueError`` before anything
    /// is deleted: active jobs are never purged.
    #[pyo3(signature = (older_than, statuses=None))]
    fn purge(
        &self,
        py: Python<'_>,
        older_than: &Bound<'_, PyAny>,
        statuses: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        super::ops::purge_jobs(py, self.core(), older_than, statuses)
    }

    /// Ends a ``ready``, ``running`` or ``failed`` job as ``cancelled``
    /// (its dedupe key is free again); True if it was. A running job's
    /// worker learns it at its next :meth:`heartbeat` or settle, which
    /// raises ``JobCancelledError`` (a ``LeaseLostError``) and changes
    /// nothing: the job stays cancelled. False, changing nothing, for a job
    /// already ``done`` or ``cancelled``, or unknown.
    fn cancel(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::job_id)] job_id: String,
    ) -> PyResult<bool> {
        Ok(py.detach(|| self.core().jobs().cancel(&job_id))?)
    }

    /// Settles a claimed job as done.
    fn mark_done(&self, py: Python<'_>, job: &Bound<'_, PyAny>) -> PyResult<()> {
        let (id, token) = lease_of(job, "job")?;
        Ok(py.detach(|| self.core().jobs().mark_done(&id, &token))?)
    }

    /// Settles claimed jobs as done in one transaction, all or none.
    fn mark_done_many(&self, py: Python<'_>, jobs: &Bound<'_, PyAny>) -> PyResult<()> {
        let leases = leases_of(jobs)?;
        Ok(py.detach(|| self.core().jobs().mark_done_many(&leases))?)
    }

    /// Records a failed attempt: ``ready`` again after 60 s doubling per
    /// attempt (capped at 1 h), or ``failed`` after the last attempt.
    /// Returns the new status. ``retry`` (a :class:`memtree.RetryPolicy`)
    /// gives another ``base``, ``cap`` and ``max_attempts``; a bad one is a
    /// ``ValueError`` before anything is written.
    #[pyo3(signature = (job, error, retry=None))]
    fn mark_failed<'py>(
        &self,
        py: Python<'py>,
        job: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::error)] error: String,
        retry: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (id, token) = lease_of(job, "job")?;
        let policy = super::ops::retry_policy(retry)?;
        let status = py.detach(|| {
            self.core().jobs().mark_failed_with(
                crate::sys::clock::now_ms(),
                &id,
                &token,
                &error,
                &policy,
            )
        })?;
        py_status(py, status)
    }

    /// Settles a claimed job as done and claims the next available job
    /// (as :meth:`claim_next`) in ONE transaction: both commit or neither
    /// does, so a worker's steady state is two commits a job (the enqueue
    /// and this). Returns the job claimed, or None.
    ///
    /// :class:`memtree.LeaseLostError` if the lease was lost: nothing is
    /// settled or claimed. ``lease``, ``kinds`` and ``priorities`` are
    /// checked before anything is written, with the errors of
    /// :meth:`claim_next`.
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

    /// Records a failed attempt (as :meth:`mark_failed`) and claims the
    /// next available job (as :meth:`claim_next`) in ONE transaction;
    /// returns the failed job's new status and the job claimed, or None.
    /// Errors as for :meth:`mark_done_and_claim_next`.
    #[pyo3(signature = (job, error, lease=None, kinds=None, priorities=None, retry=None))]
    #[allow(clippy::too_many_arguments)]
    fn mark_failed_and_claim_next<'py>(
        &self,
        py: Python<'py>,
        job: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::error)] error: String,
        lease: Option<&Bound<'_, PyAny>>,
        kinds: Option<&Bound<'_, PyAny>>,
        priorities: Option<&Bound<'_, PyAny>>,
        retry: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, Option<PyJob>)> {
        let (id, token) = lease_of(job, "job")?;
        let lease = convert::opt_positive_duration(lease, "lease", DEFAULT_LEASE)?;
        let kinds = kinds.map(|k| convert::strs(k, "kinds")).transpose()?;
        let priorities = priorities_of(priorities)?;
        let policy = super::ops::retry_policy(retry)?;
        let (status, next) = py.detach(|| {
            self.core().jobs().mark_failed_and_claim_next_at(
                crate::sys::clock::now_ms(),
                &id,
                &token,
                &error,
                lease,
                kinds.as_deref(),
                &priorities,
                &policy,
            )
        })?;
        Ok((py_status(py, status)?, next.map(|inner| PyJob { inner })))
    }

    /// Puts a claimed job back until ``until`` (a time, or a delay from
    /// now); the attempt does not count. ``last_error`` becomes ``reason`` as
    /// given and ``started_at`` is cleared, as OpenHuman's ``mark_deferred``
    /// does. ``TypeError`` if ``until`` is neither
    /// an aware ``datetime`` nor a ``timedelta``; ``ValueError`` if it is
    /// naive or lands outside 0001-01-01 .. 9999-12-31T23:59:59.999Z (UTC).
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

    /// Extends a held lease to now + ``lease``; returns the new expiry.
    /// ``lease`` is checked before anything is written, as for
    /// :meth:`claim_next`.
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

    /// Hands held leases back at once (ready now, attempt refunded);
    /// lost leases are skipped. Returns how many were released.
    fn release(&self, py: Python<'_>, jobs: &Bound<'_, PyAny>) -> PyResult<usize> {
        let leases = leases_of(jobs)?;
        Ok(py.detach(|| self.core().jobs().release(&leases))?)
    }

    /// Hands EVERY running job back at once, whoever holds it. Only for a
    /// process that knows it is the sole worker; workers use :meth:`release`.
    fn release_running_locks(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(py.detach(|| self.core().jobs().release_running_locks())?)
    }

    /// Requeues running jobs whose lease expired, and at once those whose
    /// holder process is provably dead on this host (``failed`` if that
    /// claim was the last attempt); returns how many.
    fn recover_stale_locks(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(py.detach(|| self.core().jobs().recover_stale_locks())?)
    }

    /// Puts a dead-lettered job back to ready with attempts reset. False if
    /// it is not ``failed`` or an active job holds its dedupe key.
    fn retry(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::job_id)] job_id: String,
    ) -> PyResult<bool> {
        Ok(py.detach(|| self.core().jobs().retry(&job_id))?)
    }

    /// The job with this id, or None.
    fn get(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::id)] id: String,
    ) -> PyResult<Option<PyJob>> {
        let job = py.detach(|| self.core().jobs().get(&id))?;
        Ok(job.map(|inner| PyJob { inner }))
    }

    /// Jobs oldest first, filtered in SQL; ``limit`` clamped to 1..10000
    /// (past 64 bits a ``ValueError``); an unknown ``status`` is a ``ValueError``.
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

    /// Periodic enqueue, once per slot of ``every``: the same call as
    /// :meth:`Scheduler.schedule`.
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

    /// Job counts for every status.
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

/// Chunk writes and enqueues buffered in Python and committed together by
/// ONE native call (one transaction) at :meth:`commit` or at the end of a
/// ``with`` block; an exception in the block discards everything. No lock is
/// held while the block's Python code runs.
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
    /// Buffers chunk upserts; returns how many.
    fn upsert_chunks(&self, chunks: &Bound<'_, PyAny>) -> PyResult<usize> {
        let chunks = PyChunk::extract_all(chunks)?;
        let n = chunks.len();
        // Chunks are frozen, so holding the objects is as safe as a copy.
        self.with_open(|pending, _| pending.extend(chunks))?;
        Ok(n)
    }

    /// Buffers a job (validated and serialised now, with the errors of
    /// :meth:`Jobs.enqueue`); returns its index in :attr:`job_ids`.
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

    /// The ingest gate inside the write: the commit claims the source in
    /// ``mem_tree_ingested_sources`` in the same transaction as the chunks
    /// and jobs, so a crash never leaves a claimed source without them. If
    /// another ingest already claimed it (any of the batch's sources),
    /// NOTHING in the batch is written and :attr:`claimed` is False.
    /// ``ValueError``/``TypeError`` for a bad kind or an empty ``source_id``,
    /// before anything is buffered.
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

    /// Writes everything in one transaction; returns the job ids (None for
    /// a dedupe collision, and every one None when the claim lost). A batch
    /// commits once.
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

    /// Drops everything buffered.
    fn discard(&self) {
        let mut state = self.state();
        if matches!(*state, BatchState::Open { .. }) {
            *state = BatchState::Closed;
        }
    }

    /// After the commit: one id (or None) per enqueue, in order.
    #[getter]
    fn job_ids(&self) -> PyResult<Vec<Option<String>>> {
        match &*self.state() {
            BatchState::Committed(ids, _) => Ok(ids.clone()),
            _ => Err(PyRuntimeError::new_err("the batch is not committed")),
        }
    }

    /// After the commit: True if the batch's :meth:`claim_source` won (and
    /// everything was written), False if it lost (nothing was written), None
    /// when the batch claimed no source.
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

/// The generation of the process-wide enqueue signal.
#[pyfunction]
fn job_signal() -> u64 {
    jobs::signal_generation()
}

/// Waits until the signal moves past ``seen`` or ``timeout`` seconds pass.
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

/// Wakes every idle worker of this process.
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
