//! `memtree.Scheduler` (`store.scheduler`): argument conversion and GIL
//! release around the core's periodic jobs (`crate::scheduler`).

use pyo3::prelude::*;

use super::convert::{self, arg};
use super::job_kinds::date_iso;
use super::payload;
use super::store::PyStore;
use crate::db::store::Store;
use crate::sys::clock::now_ms;

/// Periodic jobs on a store's queue (``store.scheduler``), crash-safe and
/// once per time slot: a schedule fires by enqueueing its job, and the job
/// row records that the slot fired; the check and the enqueue are one
/// transaction, so however many processes call, each slot gets exactly one
/// job, and a crash leaves the slot fired (its job committed) or not. Times
/// (``now``, ``today``) are aware datetimes or int milliseconds, now when
/// omitted.
#[pyclass(frozen, name = "Scheduler", module = "memtree")]
pub struct PyScheduler {
    store: Py<PyStore>,
}

impl PyScheduler {
    /// The scheduler of `store`.
    pub fn new(store: &Bound<'_, PyStore>) -> Self {
        PyScheduler {
            store: store.clone().unbind(),
        }
    }

    fn core(&self) -> &Store {
        &self.store.get().inner
    }
}

fn now_arg(now: Option<&Bound<'_, PyAny>>) -> PyResult<i64> {
    Ok(convert::opt_time_or_ms(now, "now")?.unwrap_or_else(now_ms))
}

/// `Scheduler.schedule` and its alias `Jobs.schedule`: the arguments
/// converted, then the core's [`crate::scheduler::Scheduler::schedule`].
pub(super) fn schedule(
    store: &Store,
    py: Python<'_>,
    kind: String,
    every: &Bound<'_, PyAny>,
    payload: Option<&Bound<'_, PyAny>>,
    key: Option<&Bound<'_, PyAny>>,
    now: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<String>> {
    let every = convert::positive_duration(every, "every")?;
    let payload_json = match payload {
        Some(p) => payload::to_json(p, "payload")?,
        None => "{}".to_owned(),
    };
    let key = match key {
        Some(k) => convert::text(k, "key")?,
        None => kind.clone(),
    };
    let now = now_arg(now)?;
    Ok(py.detach(|| {
        store
            .scheduler()
            .schedule(&kind, every, &payload_json, &key, now)
    })?)
}

#[pymethods]
impl PyScheduler {
    /// Fires schedule ``key`` (default: ``kind``) for the slot of ``every``
    /// holding ``now`` (slots start at multiples of ``every`` since the
    /// epoch): enqueues a job of ``kind`` with ``payload`` (default ``{}``),
    /// dedupe key ``<key>@<slot start ms>``, available at the slot's start,
    /// unless the slot already fired (its job in any status). Returns the new
    /// job's id or None. ``ValueError``: ``every`` under 1 ms, an empty kind
    /// or key, a payload JSON cannot hold.
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
        schedule(self.core(), py, kind, every, payload, key, now)
    }

    /// OpenHuman's manual trigger: ``digest_daily`` for ``date`` unless one
    /// for that day is ready or running (a finished one does not stop it).
    fn trigger_digest(&self, py: Python<'_>, date: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
        let date = date_iso(date)?;
        Ok(py.detach(|| self.core().scheduler().trigger_digest(&date))?)
    }

    /// A ``digest_daily`` for each of the ``days_back`` days before
    /// ``today``, in one transaction; how many were new.
    #[pyo3(signature = (days_back, today=None))]
    fn backfill_missing_digests(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::days_back)] days_back: i64,
        today: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let today = convert::opt_time_or_ms(today, "today")?.unwrap_or_else(now_ms);
        Ok(py.detach(|| {
            self.core()
                .scheduler()
                .backfill_missing_digests(days_back, today)
        })?)
    }

    /// OpenHuman's daily run, once per UTC day however often called: the
    /// digest of yesterday and the stale-buffer flush of today (keys
    /// ``digest_daily:<date>``, ``flush_stale:<date>``) in one transaction,
    /// each only if its key never had a job. Returns the two new ids.
    #[pyo3(signature = (now=None))]
    fn run_daily(
        &self,
        py: Python<'_>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Option<String>, Option<String>)> {
        let now = now_arg(now)?;
        Ok(py.detach(|| self.core().scheduler().run_daily(now))?)
    }

    /// The time until the next daily run, 00:05 UTC (OpenHuman's).
    #[pyo3(signature = (now=None))]
    fn next_daily_run_in<'py>(
        &self,
        py: Python<'py>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ms = crate::scheduler::next_daily_run_in(now_arg(now)?);
        let imports = super::imports::get(py)?;
        imports.one_ms.bind(py).call_method1("__mul__", (ms,))
    }

    fn __repr__(&self) -> String {
        format!("Scheduler({})", self.core().path().display())
    }
}

/// Adds the class to `m`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyScheduler>()
}
