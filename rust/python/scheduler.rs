//! `memtree.Scheduler` (`store.scheduler`): argument conversion and GIL
//! release around the core's periodic jobs (`crate::scheduler`).

use pyo3::prelude::*;

use super::convert::{self, arg};
use super::payload;
use super::store::PyStore;
use crate::clock::now_ms;
use crate::store::Store;

/// The periodic side of a store's job queue (see the stub).
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

/// A `date` / `datetime` as `YYYY-MM-DD`, or such a str.
fn date_arg(value: &Bound<'_, PyAny>) -> PyResult<String> {
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

    fn trigger_digest(&self, py: Python<'_>, date: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
        let date = date_arg(date)?;
        Ok(py.detach(|| self.core().scheduler().trigger_digest(&date))?)
    }

    #[pyo3(signature = (days_back, today=None))]
    fn backfill_missing_digests(
        &self,
        py: Python<'_>,
        days_back: i64,
        today: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let today = convert::opt_time_or_ms(today, "today")?.unwrap_or_else(now_ms);
        Ok(py.detach(|| {
            self.core()
                .scheduler()
                .backfill_missing_digests(days_back, today)
        })?)
    }

    #[pyo3(signature = (now=None))]
    fn run_daily(
        &self,
        py: Python<'_>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Option<String>, Option<String>)> {
        let now = now_arg(now)?;
        Ok(py.detach(|| self.core().scheduler().run_daily(now))?)
    }

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
